using System;
using System.Threading;
using Xunit;

namespace DitCache.Tensors.Tests;

/// <summary>The worker pool's contract: every item once, distinct slots, nesting inline, errors rethrown, no garbage.</summary>
public class WorkerPoolTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 4)]
    [InlineData(5, 3)]
    [InlineData(100, 3)]
    [InlineData(7, 16)]
    public void Every_item_runs_once_on_a_slot_below_the_thread_count(int items, int threads)
    {
        int[] hits = new int[items];
        int[] slotOf = new int[items];
        int[] threadOf = new int[items];
        WorkerPool.Run((item, slot) =>
        {
            Interlocked.Increment(ref hits[item]);
            slotOf[item] = slot;
            threadOf[item] = Environment.CurrentManagedThreadId;
            Thread.SpinWait(2000);
        }, items, threads);
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.All(slotOf, s => Assert.InRange(s, 0, Math.Min(items, threads) - 1));
        for (int i = 0; i < items; i++)
        {
            for (int j = 0; j < items; j++)
            {
                // One slot, one thread, within a region (per-slot scratch relies on it).
                Assert.True(slotOf[i] != slotOf[j] || threadOf[i] == threadOf[j], $"slot {slotOf[i]} on two threads");
            }
        }
    }

    [Fact]
    public void A_region_started_inside_a_region_runs_inline()
    {
        int outer = 0, inner = 0, innerOffThread = 0;
        WorkerPool.Run((item, slot) =>
        {
            Interlocked.Increment(ref outer);
            int me = Environment.CurrentManagedThreadId;
            WorkerPool.Run((i, s) =>
            {
                Interlocked.Increment(ref inner);
                if (Environment.CurrentManagedThreadId != me || s != 0)
                {
                    Interlocked.Increment(ref innerOffThread);
                }
            }, 4, 4);
        }, 6, 3);
        Assert.Equal(6, outer);
        Assert.Equal(24, inner);
        Assert.Equal(0, innerOffThread);
    }

    [Fact]
    public void A_body_exception_reaches_the_caller_after_the_region_ends()
    {
        int done = 0;
        var e = Assert.Throws<InvalidOperationException>(() => WorkerPool.Run((item, _) =>
        {
            if (item == 3)
            {
                throw new InvalidOperationException("item 3");
            }

            Interlocked.Increment(ref done);
        }, 20, 3));
        Assert.Equal("item 3", e.Message);
        Assert.InRange(done, 0, 19);      // how many other items ran depends on which threads woke before the throw

        // The pool is usable afterwards.
        int after = 0;
        WorkerPool.Run((_, _) => Interlocked.Increment(ref after), 10, 3);
        Assert.Equal(10, after);
    }

    [Fact]
    public void Multithreaded_gemm_and_attention_allocate_nothing_per_call()
    {
        var gemm = new ManagedGemm(3);
        float[] a = TestUtil.Random(200 * 300, 1), b = TestUtil.Random(300 * 250, 2), c = new float[200 * 250];
        const int Tokens = 65, HeadDim = 64, Heads = 3, Batch = 2;
        float[] qkv = TestUtil.Random(Batch * Tokens * 3 * Heads * HeadDim, 3), y = new float[Batch * Tokens * Heads * HeadDim];
        float[] scratch = new float[Kernels.AttentionScratchSize(Tokens, HeadDim, 3)];
        void Calls()
        {
            gemm.Multiply(200, 250, 300, a, 300, b, 300, transB: true, c, 250);
            Kernels.Attention(qkv, y, Batch, Tokens, Heads, HeadDim, scratch, 3);
        }

        for (int i = 0; i < 5; i++)
        {
            Calls();                                    // JIT, worker threads, their pack buffers
        }

        long thread = GC.GetAllocatedBytesForCurrentThread(), workers = WorkerPool.WorkerAllocatedBytes;
        for (int i = 0; i < 20; i++)
        {
            Calls();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - thread);
        Assert.Equal(0, WorkerPool.WorkerAllocatedBytes - workers);
        Assert.True(WorkerPool.ThreadCount >= 2, "three threads asked for: two workers");
    }
}
