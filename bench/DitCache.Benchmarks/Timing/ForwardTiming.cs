using System;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>forward [threads] [rounds] [gemm]</c>: median ms of one model forward for the shipped model (batch 20 with CFG,
/// so 40 rows) and a DiT-S/2-shaped random model (256 tokens, batch 2). Public API only, so the same file builds
/// against an older checkout for a before/after comparison (run the two builds in alternation). With a fifth
/// argument, the two outputs are also written there as raw float32 (shipped, then DiT-S/2) to compare builds.
/// </summary>
internal static class ForwardTiming
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        int rounds = args.Length > 2 ? int.Parse(args[2]) : 7;
        string gemm = args.Length > 3 ? args[3] : "managed";

        DitModel shipped = new(DefaultModel.LoadWeights(null), GemmFactory.Create(gemm, threads), threads);
        DitConfig c = shipped.Config;
        const int N = 20;
        int[] labels = new int[N];
        for (int i = 0; i < N; i++)
        {
            labels[i] = i % c.NumClasses;
        }

        float[] x = Wave(N * c.InChannels * c.InputSize * c.InputSize);
        float[] eps = new float[N * c.OutChannels * c.InputSize * c.InputSize];
        DitRunState cfgState = shipped.CreateState(2 * N);

        DitConfig s2 = DitConfig.FromPreset("DiT-S/2", 256);
        DitModel small = new(DitWeights.FromFile(DitWeights.RandomFile(s2)), GemmFactory.Create(gemm, threads), threads);
        DitRunState s2State = small.CreateState(2);
        float[] xs = Wave(2 * s2.InChannels * s2.InputSize * s2.InputSize);
        float[] ts = [500f, 500f];
        int[] ys = [3, s2.NumClasses];
        float[] outS2 = new float[2 * s2.OutChannels * s2.InputSize * s2.InputSize];

        double[] ms = Timer.Compare(rounds, 3,
            () => shipped.ForwardWithCfg(x, 500f, labels, 4f, c.InChannels, cfgState, NoCache.Instance, eps),
            () => small.Forward(xs, ts, ys, s2State, NoCache.Instance, outS2));
        Console.WriteLine($"RESULT shipped-b{N}-cfg {gemm} t{threads} {ms[0]:F3}");
        Console.WriteLine($"RESULT dit-s2-b2 {gemm} t{threads} {ms[1]:F3}");
        Console.WriteLine($"CHECK {Sum(eps):R} {Sum(outS2):R}");
        if (args.Length > 4)
        {
            using var file = System.IO.File.Create(args[4]);
            file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>(eps));
            file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>(outS2));
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

    private static double Sum(float[] x)
    {
        double s = 0;
        foreach (float v in x)
        {
            s += v;
        }

        return s;
    }
}
