using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>scaling [rounds] [gemm] [what]</c>: one thread against two, in one process, alternating round after round:
/// the DiT-S/2 forward (random weights, batch 2, 256 tokens) and the shipped model's 50-step DDIM loop with CFG for
/// ten classes (20-row forwards). Per variant the median wall time, the median CPU/wall of the process
/// (user + sys over wall: 2.0 means both cores busy the whole time, spinning included) and the two-thread speedup
/// (median of the per-round ratios), and how the worker pool's offers went (<see cref="WorkerPool.Counters"/>).
/// <c>what</c>: s2, loop or both (default).
/// </summary>
internal static class ScalingTiming
{
    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 7;
        string gemm = args.Length > 2 ? args[2] : "managed";
        string what = args.Length > 3 ? args[3] : "both";
        Console.WriteLine($"GEMM {gemm} ({ManagedGemm.Resolve(GemmIsa.Auto)}), {rounds} rounds, load {LoadAverage()}");

        var names = new List<string>();
        var variants = new List<Action>();
        if (what is "s2" or "both")
        {
            DitConfig s2 = DitConfig.FromPreset("DiT-S/2", 256);
            var file = DitWeights.RandomFile(s2);
            foreach (int threads in new[] { 1, 2 })
            {
                var model = new DitModel(DitWeights.FromFile(file), GemmFactory.Create(gemm, threads), threads);
                DitRunState state = model.CreateState(2);
                float[] x = Wave(2 * s2.InChannels * s2.InputSize * s2.InputSize);
                float[] output = new float[2 * s2.OutChannels * s2.InputSize * s2.InputSize];
                names.Add($"DiT-S/2 forward b2, {threads} thread(s)");
                variants.Add(() => model.Forward(x, [500f, 500f], [3, s2.NumClasses], state, NoCache.Instance, output));
            }
        }

        if (what is "loop" or "both")
        {
            foreach (int threads in new[] { 1, 2 })
            {
                var pipeline = new DiffusionPipeline(new DitModel(DefaultModel.LoadWeights(null), GemmFactory.Create(gemm, threads), threads),
                    DefaultModel.LoadCalibration(null));
                var request = new SampleRequest(Enumerable.Range(0, 10).ToArray(), 50, "ddim", 4f);
                ICacheOptions none = CacheRegistry.Parse("none");
                names.Add($"shipped 50-step DDIM CFG, 10 classes, {threads} thread(s)");
                variants.Add(() => pipeline.Run(request, none));
            }
        }

        foreach (Action v in variants)
        {
            v();
            v();
        }

        int n = variants.Count;
        var wall = new double[n][];
        var ratio = new double[n][];
        for (int k = 0; k < n; k++)
        {
            wall[k] = new double[rounds];
            ratio[k] = new double[rounds];
        }

        var clock = new Stopwatch();
        var pool = new (long Regions, long ToSpinning, long ToSleeping, long TakenBack)[n];
        for (int r = 0; r < rounds; r++)
        {
            for (int k0 = 0; k0 < n; k0++)
            {
                int k = (k0 + r) % n;
                TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var c0 = WorkerPool.Counters;
                clock.Restart();
                variants[k]();
                double ms = clock.Elapsed.TotalMilliseconds;
                var c1 = WorkerPool.Counters;
                TimeSpan cpu1 = Process.GetCurrentProcess().TotalProcessorTime;
                pool[k] = (pool[k].Regions + c1.Regions - c0.Regions, pool[k].ToSpinning + c1.ToSpinning - c0.ToSpinning,
                    pool[k].ToSleeping + c1.ToSleeping - c0.ToSleeping, pool[k].TakenBack + c1.TakenBack - c0.TakenBack);
                wall[k][r] = ms;
                ratio[k][r] = (cpu1 - cpu0).TotalMilliseconds / ms;
            }
        }

        for (int k = 0; k < n; k++)
        {
            string speedup = k % 2 == 1
                ? string.Create(CultureInfo.InvariantCulture, $", speedup {Median(wall[k - 1].Zip(wall[k], (a, b) => a / b).ToArray()):F3}x")
                : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT {names[k]}: {Median(wall[k]):F1} ms, CPU/wall {Median(ratio[k]):F2}{speedup}"));
            if (pool[k].Regions > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  pool per call: {(double)pool[k].Regions / rounds:F0} regions, offers to a spinning worker {(double)pool[k].ToSpinning / rounds:F0}, to a sleeping one {(double)pool[k].ToSleeping / rounds:F0}, taken back {(double)pool[k].TakenBack / rounds:F0}"));
            }
        }

        Console.WriteLine($"load after {LoadAverage()}");
    }

    private static double Median(double[] x) => x.Order().ElementAt(x.Length / 2);

    private static string LoadAverage()
    {
        try
        {
            return System.IO.File.ReadAllText("/proc/loadavg").Trim();
        }
        catch (System.IO.IOException)
        {
            return "n/a";
        }
    }

    private static float[] Wave(int n)
    {
        float[] x = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = (float)Math.Sin(i * 0.37);
        }

        return x;
    }
}
