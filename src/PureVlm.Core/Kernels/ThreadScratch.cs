using System.Runtime.InteropServices;

namespace PureVlm.Kernels;

/// <summary>
/// A 64-byte-aligned native float buffer for one thread's kernel scratch, grown on demand and reused. Kept in a
/// [ThreadStatic] field: when a thread ends (thread-pool threads retire when idle) the reference dies with it and the
/// finalizer frees the block, so a long-running host does not leak scratch per retired thread.
/// </summary>
internal sealed unsafe class ThreadScratch
{
    float* _pointer;
    nint _floats;

    /// <summary>At least <paramref name="floats"/> floats; the contents are unspecified.</summary>
    public float* Get(nint floats)
    {
        if (floats > _floats)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
            _pointer = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
            _floats = floats;
        }
        return _pointer;
    }

    ~ThreadScratch() => NativeMemory.AlignedFree(_pointer);
}
