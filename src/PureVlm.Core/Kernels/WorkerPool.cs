using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace PureVlm.Kernels;

/// <summary>One parallel kernel invocation: a struct holding raw pointers and sizes, run once per task index.</summary>
internal interface IParallelJob
{
    /// <summary>Does task <paramref name="task"/> (tasks are independent; any thread may run any task).</summary>
    void Run(int task);
}

/// <summary>
/// A persistent pool of worker threads, created once and reused by every kernel call. A call publishes a job
/// (a pointer to the caller's stack struct plus a function pointer), wakes the workers, works alongside them, and
/// waits; tasks are claimed with an interlocked counter. Nothing is allocated per call. Calls made from inside a
/// job, or while another thread owns the pool, run inline on the calling thread.
/// </summary>
/// <remarks>
/// Between jobs a worker spins for up to <see cref="SpinMicroseconds"/> before it sleeps on its event, and the caller
/// spins as long for the workers to finish: a decode step runs about 300 short jobs, and waking a sleeping thread
/// (a futex call, slow on a VM) at each cost milliseconds per token. Spinning yields the core at every turn, so other
/// threads that are ready still run.
/// </remarks>
internal static unsafe class WorkerPool
{
    sealed class Worker
    {
        public readonly ManualResetEventSlim Go = Eager(new(false));
        /// <summary>Counts the jobs this worker was asked to join; it waits for the next value (read with Volatile).</summary>
        public int Ticket;
        /// <summary>True while it sleeps (or is about to) on <see cref="Go"/>, so the caller must set it.</summary>
        public volatile bool Sleeping;
    }

    const long SpinMicroseconds = 200;
    static readonly long SpinTicks = SpinMicroseconds * Stopwatch.Frequency / 1_000_000;

    static readonly object Gate = new();
    static readonly ManualResetEventSlim Done = Eager(new(false));

    /// <summary>
    /// ManualResetEventSlim creates its kernel event on the first wait that does not end while spinning; doing that
    /// up front keeps a later kernel call from allocating.
    /// </summary>
    static ManualResetEventSlim Eager(ManualResetEventSlim e)
    {
        _ = e.WaitHandle;
        return e;
    }
    static Worker[] workers = [];
    [ThreadStatic] static bool insideJob;

    static void* jobPointer;
    static delegate*<void*, int, void> invoke;
    static int taskCount, nextTask, pending;
    static Exception? failure;

    /// <summary>Runs <c>job.Run(t)</c> for every t in [0, tasks) over up to <see cref="KernelSettings.Threads"/> threads.
    /// <paramref name="job"/> must be a local of the caller (its address is shared with the workers).</summary>
    public static void Run<TJob>(ref TJob job, int tasks) where TJob : struct, IParallelJob
    {
        int helpers = Math.Min(KernelSettings.Threads, tasks) - 1;
        if (helpers <= 0 || insideJob || !Monitor.TryEnter(Gate))
        {
            for (int t = 0; t < tasks; t++) job.Run(t);
            return;
        }
        try
        {
            EnsureWorkers(helpers);
            jobPointer = Unsafe.AsPointer(ref job);
            invoke = &Invoke<TJob>;
            taskCount = tasks;
            nextTask = 0;
            pending = helpers;
            failure = null;
            Done.Reset();
            for (int w = 0; w < helpers; w++)
            {
                var worker = workers[w];
                Interlocked.Increment(ref worker.Ticket); // a full fence: Sleeping below is read after it
                if (worker.Sleeping) worker.Go.Set();
            }
            Drain();
            long start = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref pending) != 0 && Stopwatch.GetTimestamp() - start <= SpinTicks) Pause();
            // pending, not Done, says when the job is over: a caller that saw pending reach 0 while spinning can start
            // the next job before the last worker's Done.Set() of this one lands, which then wakes the next wait early.
            while (Volatile.Read(ref pending) != 0)
            {
                Done.Wait();
                if (Volatile.Read(ref pending) != 0) Done.Reset(); // that early set: wait for the real one
            }
            jobPointer = null;
            if (failure != null) ExceptionDispatchInfo.Capture(failure).Throw();
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    static void Invoke<TJob>(void* job, int task) where TJob : struct, IParallelJob => Unsafe.AsRef<TJob>(job).Run(task);

    static void Drain()
    {
        insideJob = true;
        try
        {
            int t;
            while ((t = Interlocked.Increment(ref nextTask) - 1) < taskCount) invoke(jobPointer, t);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            nextTask = taskCount;
        }
        finally
        {
            insideJob = false;
        }
    }

    static void EnsureWorkers(int count)
    {
        if (workers.Length >= count) return;
        var grown = new Worker[count];
        Array.Copy(workers, grown, workers.Length);
        for (int i = workers.Length; i < count; i++)
        {
            var w = grown[i] = new Worker();
            new Thread(() => Loop(w)) { IsBackground = true, Name = $"PureVlm kernel worker {i}" }.Start();
        }
        workers = grown;
    }

    static void Loop(Worker self)
    {
        int seen = 0;
        while (true)
        {
            long start = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref self.Ticket) == seen && Stopwatch.GetTimestamp() - start <= SpinTicks) Pause();
            if (Volatile.Read(ref self.Ticket) == seen)
            {
                self.Sleeping = true;
                Interlocked.MemoryBarrier(); // the caller either sees Sleeping or we see its new ticket
                while (Volatile.Read(ref self.Ticket) == seen)
                {
                    self.Go.Wait();
                    self.Go.Reset(); // a set left over from a job we caught while spinning only costs one extra turn
                }
                self.Sleeping = false;
            }
            seen = Volatile.Read(ref self.Ticket);
            Drain();
            if (Interlocked.Decrement(ref pending) == 0) Done.Set();
        }
    }

    /// <summary>
    /// One turn of a spin: a short pause, then the core goes to any other thread that is ready to run (a spinning worker
    /// must not take a core from the rest of the process — a server's I/O threads, other requests — when it is busy).
    /// </summary>
    static void Pause()
    {
        Thread.SpinWait(16);
        Thread.Yield();
    }
}
