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
/// thread count asked for, and are background threads.</para>
/// <para>Wait policy (spin, then block). A DiT forward is a chain of short regions (a GEMM, the attention heads, an
/// element-wise pass) separated by a few microseconds of serial code, so a worker that went to sleep after every
/// region would be woken through the kernel for every one of them (tens of microseconds on Linux, more when the
/// scheduler is slow to run it), and the caller would start each region alone. After a region a worker therefore
/// spins for up to <see cref="SpinMicroseconds"/> (pause instructions, and a yield every couple of microseconds so
/// that a thread sharing its core, the caller among them, is not held up) watching for the next offer, and only
/// then blocks on its own semaphore; so it costs nothing while OpenBLAS or anything else runs for longer
/// than that. The caller offers a region to every worker it wants: a spinning one takes it with one compare-exchange,
/// a sleeping one gets a permit. When the caller has run out of items it takes back the offers that no worker has
/// accepted yet, so a region never waits on a thread that did not get a core (on a shared machine, a worker can stay
/// unscheduled for a whole time slice); it then waits for the workers that did accept, spinning briefly before
/// blocking as well.</para>
/// </remarks>
internal static unsafe class WorkerPool
{
    /// <summary>How long an idle worker (and a caller waiting for its workers) spins before it blocks.</summary>
    internal const int SpinMicroseconds = 100;

    // A worker's state. Sleeping → Offered (the caller, then a permit), Spinning → Offered (the caller),
    // Offered → Working (the worker accepts), Offered → Spinning (the caller takes the offer back),
    // Working → Spinning (the worker is done), Spinning → Sleeping (the worker's spin ran out).
    private const int Spinning = 0;
    private const int Sleeping = 1;
    private const int Offered = 2;
    private const int Working = 3;

    private static readonly long s_spinTicks = Math.Max(1, System.Diagnostics.Stopwatch.Frequency * SpinMicroseconds / 1_000_000);
    private static readonly Lock s_gate = new();
    // Released once by the last worker of a region. A SemaphoreSlim rather than a ManualResetEventSlim: the latter
    // allocates its lock object the first time a wait really blocks, which can be any step of a run.
    private static readonly SemaphoreSlim s_done = new(0);
    private static Worker[] s_workers = [];

    // The running region; written under s_gate before it is offered, read by the workers after they accept it.
    private static delegate*<void*, int, int, void> s_body;
    private static void* s_context;
    private static int s_items;
    private static int s_next;
    private static int s_slots;
    private static int s_pending;
    private static Exception? s_error;

    // Diagnostics (written by callers under s_gate): regions run on more than one thread, and their offers by kind.
    private static long s_regions;
    private static long s_offersToSpinning;
    private static long s_offersToSleeping;
    private static long s_offersTakenBack;

    /// <summary>
    /// Counters since the process started (timing tools): regions run on more than one thread; offers a spinning
    /// worker took with one compare-exchange; offers that had to wake a sleeping worker through its semaphore; and
    /// offers the caller took back because no worker had accepted them by the time it ran out of items.
    /// </summary>
    public static (long Regions, long ToSpinning, long ToSleeping, long TakenBack) Counters =>
        (Volatile.Read(ref s_regions), Volatile.Read(ref s_offersToSpinning), Volatile.Read(ref s_offersToSleeping),
            Volatile.Read(ref s_offersTakenBack));

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
            Worker[] pool = s_workers;
            s_body = body;
            s_context = context;
            s_items = items;
            s_next = -1;
            s_slots = 0;
            s_error = null;
            Volatile.Write(ref s_pending, helpers);
            s_regions++;
            for (int i = 0; i < helpers; i++)
            {
                Worker w = pool[i];
                if (Interlocked.CompareExchange(ref w.State, Offered, Spinning) == Spinning)
                {
                    s_offersToSpinning++;
                }
                else
                {
                    // Sleeping: only an offer moves it on, so the write below races with nothing.
                    Volatile.Write(ref w.State, Offered);
                    w.Wake.Release();
                    s_offersToSleeping++;
                }
            }

            WorkToTheEnd(0);

            // An offer no worker has accepted yet is taken back: the region never waits on a thread the scheduler has
            // not run (on a loaded machine that can be a whole time slice, longer than the region). Workers that did
            // accept may still read the caller's context: wait for the last one.
            bool waitForHelpers = true;
            for (int i = 0; i < helpers; i++)
            {
                if (Interlocked.CompareExchange(ref pool[i].State, Spinning, Offered) == Offered)
                {
                    s_offersTakenBack++;
                    if (Interlocked.Decrement(ref s_pending) == 0)
                    {
                        waitForHelpers = false;
                    }
                }
            }

            if (waitForHelpers)
            {
                long until = System.Diagnostics.Stopwatch.GetTimestamp() + s_spinTicks;
                for (int spins = 1; Volatile.Read(ref s_pending) != 0 && System.Diagnostics.Stopwatch.GetTimestamp() < until; spins++)
                {
                    Thread.SpinWait(8);
                    if (spins % 16 == 0)
                    {
                        Thread.Yield();             // a worker the scheduler put on this core gets it
                    }
                }

                s_done.Wait();                      // released by the worker that brought s_pending to 0
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
    public static int ThreadCount => Volatile.Read(ref s_workers).Length;

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
            Worker[] workers = Volatile.Read(ref s_workers);
            long sum = 0;
            for (int i = 0; i < workers.Length; i++)
            {
                sum += Volatile.Read(ref workers[i].Allocated);
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

    // Called under s_gate, so only one thread grows the array. A worker is created in the Spinning state and spins
    // (or sleeps) until its first offer.
    private static void EnsureThreads(int count)
    {
        Worker[] workers = s_workers;
        if (workers.Length >= count)
        {
            return;
        }

        var grown = new Worker[count];
        workers.CopyTo(grown, 0);
        for (int i = workers.Length; i < count; i++)
        {
            grown[i] = new Worker();
            var thread = new Thread(WorkerLoop) { IsBackground = true, Name = $"DitCache worker {i + 1}" };
            thread.Start(grown[i]);
        }

        Volatile.Write(ref s_workers, grown);
    }

    private static void WorkerLoop(object? state)
    {
        var me = (Worker)state!;
        ManagedGemm.EnsurePackBuffers();            // allocate per-thread state now, not in some later step
        while (true)
        {
            if (!SpinForOffer(me) && Interlocked.CompareExchange(ref me.State, Sleeping, Spinning) == Spinning)
            {
                me.Wake.Wait();                     // an offer, or the permit of one the caller took back meanwhile
            }

            if (Interlocked.CompareExchange(ref me.State, Working, Offered) != Offered)
            {
                continue;                           // taken back: wait for the next
            }

            long before = GC.GetAllocatedBytesForCurrentThread();
            int slot = Interlocked.Increment(ref s_slots);
            WorkToTheEnd(slot);
            Volatile.Write(ref me.Allocated, me.Allocated + GC.GetAllocatedBytesForCurrentThread() - before);
            Volatile.Write(ref me.State, Spinning); // before s_pending: the next region may be offered from here on
            if (Interlocked.Decrement(ref s_pending) == 0)
            {
                s_done.Release();
            }
        }
    }

    // Spins until the worker is offered a region (true) or SpinMicroseconds have passed (false).
    private static bool SpinForOffer(Worker me)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + s_spinTicks;
        do
        {
            for (int i = 0; i < 16; i++)
            {
                if (Volatile.Read(ref me.State) == Offered)
                {
                    return true;
                }

                Thread.SpinWait(4);
            }

            Thread.Yield();                         // on a shared core, let the caller (or anyone) run instead
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until);

        return Volatile.Read(ref me.State) == Offered;
    }

    // One worker thread's hand-over state: the caller offers regions through State, the worker spins on it.
    private sealed class Worker
    {
        public int State = Spinning;

        // Bytes allocated while running regions (WorkerAllocatedBytes).
        public long Allocated;

        public SemaphoreSlim Wake { get; } = new(0);
    }
}
