using System;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace DitCache.Tensors;

/// <summary>
/// The engine's one level of threads: a process-wide set of dedicated worker threads that <see cref="ManagedGemm"/>
/// and the attention kernels share, so a step of the sampling loop allocates nothing (Parallel.For allocates its
/// closure, options and task bookkeeping on every call, about 2 KB).
/// </summary>
/// <remarks>
/// <para>A parallel region is a body function pointer, a context pointer (usually a struct on the caller's stack,
/// which stays valid because the caller waits for the region to end) and a number of items. The caller takes part as
/// slot 0; up to threads − 1 workers join as slots 1 … threads − 1 and items are handed out dynamically (an
/// interlocked counter), so uneven items balance. A body may use its slot to pick per-thread scratch.</para>
/// <para>One region runs at a time. A region started while another is running (from a body, which is nesting, or
/// from an unrelated thread) runs inline on its caller: there is never more than one level of parallel work and never
/// more threads busy than the running region asked for. Worker threads are created on first need, grow to the largest
/// thread count asked for, are background threads, and block on a semaphore between regions (no spinning beyond the
/// semaphore's short spin), so they cost nothing while OpenBLAS or anything else runs. When the caller has run out
/// of items it takes back the start permits of helpers that have not woken yet, so a region never waits on a thread
/// that did not get a core (on a shared machine, a helper can stay unscheduled for a whole time slice).</para>
/// </remarks>
internal static unsafe class WorkerPool
{
    private static readonly Lock s_gate = new();
    private static readonly SemaphoreSlim s_start = new(0);
    // Released once by the last helper of a region. A SemaphoreSlim rather than a ManualResetEventSlim: the latter
    // allocates its lock object the first time a wait really blocks, which can be any step of a run.
    private static readonly SemaphoreSlim s_done = new(0);
    private static Thread[] s_threads = [];
    private static long[] s_allocated = [];

    // The running region; written under s_gate before the workers are released, read by them after they wake.
    private static delegate*<void*, int, int, void> s_body;
    private static void* s_context;
    private static int s_items;
    private static int s_next;
    private static int s_slots;
    private static int s_pending;
    private static Exception? s_error;

    /// <summary>
    /// Calls <c>body(context, item, slot)</c> for every item in [0, <paramref name="items"/>) on up to
    /// <paramref name="threads"/> threads (the caller included) and returns when all calls have returned. Slots are
    /// distinct among the threads of one region and lie in [0, min(threads, items)). The first exception a body
    /// throws is rethrown here after every thread has stopped.
    /// </summary>
    public static void Run(delegate*<void*, int, int, void> body, void* context, int items, int threads)
    {
        int workers = Math.Min(threads, items);
        if (workers <= 1 || s_gate.IsHeldByCurrentThread || !s_gate.TryEnter())
        {
            for (int i = 0; i < items; i++)
            {
                body(context, i, 0);
            }

            return;
        }

        try
        {
            int helpers = workers - 1;
            EnsureThreads(helpers);
            s_body = body;
            s_context = context;
            s_items = items;
            s_next = -1;
            s_slots = 0;
            s_pending = helpers;
            s_error = null;
            s_start.Release(helpers);
            WorkToTheEnd(0);

            // A helper that has not woken up yet is not waited for: its start permit is taken back, so a region never
            // waits on a thread the scheduler has not run (on a loaded machine that can be a whole time slice, longer
            // than the region). Helpers that did wake may still read the caller's context: wait for the last one.
            bool waitForHelpers = true;
            while (s_start.Wait(0))
            {
                if (Interlocked.Decrement(ref s_pending) == 0)
                {
                    waitForHelpers = false;
                    break;
                }
            }

            if (waitForHelpers)
            {
                s_done.Wait();
            }

            Exception? error = s_error;
            s_error = null;
            s_body = null;
            s_context = null;
            if (error is not null)
            {
                ExceptionDispatchInfo.Capture(error).Throw();
            }
        }
        finally
        {
            s_gate.Exit();
        }
    }

    /// <summary>
    /// The function-pointer <c>Run</c> for a delegate <c>body(item, slot)</c>:
    /// for code off the step loop (set-up, tests), since the caller's closure is an allocation.
    /// </summary>
    public static void Run(Action<int, int> body, int items, int threads)
    {
        GCHandle handle = GCHandle.Alloc(body);
        try
        {
            Run(&InvokeDelegate, (void*)GCHandle.ToIntPtr(handle), items, threads);
        }
        finally
        {
            handle.Free();
        }
    }

    private static void InvokeDelegate(void* context, int item, int slot) =>
        ((Action<int, int>)GCHandle.FromIntPtr((nint)context).Target!)(item, slot);

    /// <summary>Worker threads started so far (diagnostics and tests).</summary>
    public static int ThreadCount => Volatile.Read(ref s_threads).Length;

    /// <summary>
    /// Bytes the worker threads have allocated on the managed heap while running regions (their share of the bodies
    /// plus the pool's own hand-out loop; not their start-up), summed over the workers and measured with
    /// <see cref="GC.GetAllocatedBytesForCurrentThread"/>. With the caller's own counter this accounts for every byte
    /// a parallel kernel allocates, without the noise of the rest of the process.
    /// </summary>
    public static long WorkerAllocatedBytes
    {
        get
        {
            long[] allocated = Volatile.Read(ref s_allocated);
            long sum = 0;
            for (int i = 0; i < allocated.Length; i++)
            {
                sum += Volatile.Read(ref allocated[i]);
            }

            return sum;
        }
    }

    // Runs items until none is left; an item that throws is recorded (the first exception wins) and the thread goes
    // on with the next, so every item runs even when the caller ends up running them all alone.
    private static void WorkToTheEnd(int slot)
    {
        while (true)
        {
            try
            {
                Work(slot);
                return;
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref s_error, e, null);
            }
        }
    }

    private static void Work(int slot)
    {
        delegate*<void*, int, int, void> body = s_body;
        void* context = s_context;
        int items = s_items;
        int item;
        while ((item = Interlocked.Increment(ref s_next)) < items)
        {
            body(context, item, slot);
        }
    }

    // Called under s_gate, so only one thread grows the array.
    private static void EnsureThreads(int count)
    {
        Thread[] threads = s_threads;
        if (threads.Length >= count)
        {
            return;
        }

        var grown = new Thread[count];
        threads.CopyTo(grown, 0);
        var allocated = new long[count];
        s_allocated.CopyTo(allocated, 0);
        Volatile.Write(ref s_allocated, allocated);
        for (int i = threads.Length; i < count; i++)
        {
            grown[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"DitCache worker {i + 1}" };
            grown[i].Start(i);
        }

        Volatile.Write(ref s_threads, grown);
    }

    private static void WorkerLoop(object? index)
    {
        int me = (int)index!;
        ManagedGemm.EnsurePackBuffers();            // allocate per-thread state now, not in some later step
        while (true)
        {
            s_start.Wait();
            long before = GC.GetAllocatedBytesForCurrentThread();
            int slot = Interlocked.Increment(ref s_slots);
            WorkToTheEnd(slot);

            ref long allocated = ref Volatile.Read(ref s_allocated)[me];
            Volatile.Write(ref allocated, allocated + GC.GetAllocatedBytesForCurrentThread() - before);
            if (Interlocked.Decrement(ref s_pending) == 0)
            {
                s_done.Release();
            }
        }
    }
}
