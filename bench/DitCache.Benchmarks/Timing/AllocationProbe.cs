using System;
using System.Linq;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>alloc [threads] [cache]</c>: the shipped model, 10 classes with CFG, 50 DDIM steps, in a plain process (no
/// test host): bytes allocated per step after 20 warm-up steps, on the loop thread, the worker pool's threads and
/// the whole process (<see cref="GC.GetTotalAllocatedBytes(bool)"/>).
/// </summary>
internal static class AllocationProbe
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 2;
        string cache = args.Length > 2 ? args[2] : "none";
        const int Steps = 50, Warmup = 20;
        var pipeline = new DiffusionPipeline(new DitModel(DefaultModel.LoadWeights(null), GemmFactory.Create("managed", threads), threads));
        long[] thread = new long[Steps + 1], workers = new long[Steps + 1], total = new long[Steps + 1];
        Action<int, int> probe = (done, _) =>
        {
            thread[done] = GC.GetAllocatedBytesForCurrentThread();
            workers[done] = WorkerPool.WorkerAllocatedBytes;
            total[done] = GC.GetTotalAllocatedBytes(precise: true);
        };
        probe(0, Steps);
        pipeline.Run(new SampleRequest(Enumerable.Range(0, 10).ToArray(), Steps, "ddim", CfgScale: 4f), CacheRegistry.Parse(cache), progress: probe);
        long[] PerStep(long[] c) => Enumerable.Range(Warmup + 1, Steps - Warmup).Select(n => c[n] - c[n - 1]).ToArray();
        Console.WriteLine($"cache {cache}, {threads} threads, steps {Warmup + 1}..{Steps}, bytes per step:");
        Console.WriteLine($"  loop thread  [{string.Join(", ", PerStep(thread))}]");
        Console.WriteLine($"  pool workers [{string.Join(", ", PerStep(workers))}]");
        Console.WriteLine($"  process      [{string.Join(", ", PerStep(total))}]");
    }
}
