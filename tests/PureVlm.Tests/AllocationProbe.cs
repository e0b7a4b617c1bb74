namespace PureVlm.Tests;

/// <summary>Measures what a warm operation allocates on the calling thread.</summary>
public static class AllocationProbe
{
    /// <summary>
    /// The fewest bytes the calling thread allocated over any of <paramref name="windows"/> windows of
    /// <paramref name="calls"/> calls. The runtime itself allocates now and then (tiered JIT, lazily created
    /// internals); an operation that allocates per call shows up in every window, so the minimum still catches it.
    /// </summary>
    public static long MinimumAllocated(Action operation, int calls, int windows = 3)
    {
        long best = long.MaxValue;
        for (int w = 0; w < windows; w++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < calls; i++) operation();
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return best;
    }
}
