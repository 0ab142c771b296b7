using System;
using System.Globalization;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>serialparts [rounds]</c>: the element-wise passes that ran on the calling thread alone before issue 21 (per
/// block: two LayerNorm+modulate, two gated residuals, the bias rows written before the qkv, proj and fc2 GEMMs,
/// and fc1's bias+GELU), timed on one thread by the thread's CPU time (so a loaded machine does not count) at the
/// shapes of the DiT-S/2 forward (batch 2) and of the shipped model's CFG forward (10 classes: 20 rows), next to
/// the whole forward. Their share f of the one-thread forward bounds what two threads could give when they alone
/// stay serial: 1 / (f + (1 − f)/2) (Amdahl).
/// </summary>
internal static class SerialPartsTiming
{
    public static void Run(string[] args)
    {
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 9;
        Console.WriteLine($"ISA {ManagedGemm.Resolve(GemmIsa.Auto)}, thread CPU time, {rounds} rounds, load {System.IO.File.ReadAllText("/proc/loadavg").Trim()}");

        DitConfig s2 = DitConfig.FromPreset("DiT-S/2", 256);
        var small = new DitModel(DitWeights.FromFile(DitWeights.RandomFile(s2)), GemmFactory.Create("managed", 1), 1);
        DitRunState state = small.CreateState(2);
        float[] xs = new float[2 * s2.InChannels * s2.InputSize * s2.InputSize];
        float[] outS2 = new float[2 * s2.OutChannels * s2.InputSize * s2.InputSize];
        Report("DiT-S/2 forward, batch 2", rounds, 2, s2,
            () => small.Forward(xs, [500f, 500f], [3, s2.NumClasses], state, NoCache.Instance, outS2));

        var shipped = new DitModel(DefaultModel.LoadWeights(null), GemmFactory.Create("managed", 1), 1);
        DitConfig c = shipped.Config;
        int[] labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        float[] x = new float[10 * c.InChannels * c.InputSize * c.InputSize];
        float[] eps = new float[10 * c.OutChannels * c.InputSize * c.InputSize];
        DitRunState cfg = shipped.CreateState(20);
        Report("shipped CFG forward, 10 classes (20 rows)", rounds, 20, c,
            () => shipped.ForwardWithCfg(x, 500f, labels, 4f, c.InChannels, cfg, NoCache.Instance, eps));
    }

    private static void Report(string name, int rounds, int batch, DitConfig c, Action forward)
    {
        int t = c.Tokens, d = c.Hidden, m = c.MlpHidden, rows = batch * t, stride = 6 * d;
        float[] xa = Filled(rows * d, 1), h = new float[rows * d], feature = Filled(rows * d, 2), mod = Filled(batch * stride, 3);
        float[] wide = Filled(rows * 3 * d, 4), hidden = Filled(rows * m, 5), bias3 = Filled(3 * d, 6), bias = Filled(d, 7), biasM = Filled(m, 8);
        double[] ms = Timer.Compare(rounds, 3, threadCpu: true,
            forward,
            () => Kernels.LayerNormModulate(xa, h, mod, stride, 0, d, batch, t, d),
            () => Kernels.GatedResidualAdd(xa, feature, mod, stride, 2 * d, batch, t, d),
            () =>
            {
                Rows(bias3, wide, rows);
                Rows(bias, h, rows);
                Rows(bias, feature, rows);
            },
            () => Kernels.AddBiasGeluTanh(hidden, biasM, rows, m));
        double perBlock = (2 * ms[1]) + (2 * ms[2]) + ms[3] + ms[4];
        double serial = perBlock * c.Depth, f = serial / ms[0];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name}: forward {ms[0]:F2} ms; per block LN+mod {ms[1]:F3}, gated {ms[2]:F3}, bias rows (qkv+proj+fc2) {ms[3]:F3}, bias+GELU {ms[4]:F3} ms; " +
            $"x{c.Depth} blocks = {serial:F2} ms serial = {100 * f:F1}% of the forward; two-thread bound with it serial {1 / (f + ((1 - f) / 2)):F2}x"));
    }

    private static void Rows(float[] bias, float[] y, int rows)
    {
        for (int r = 0; r < rows; r++)
        {
            bias.CopyTo(y, r * bias.Length);
        }
    }

    private static float[] Filled(int n, int seed)
    {
        var rng = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = (float)((rng.NextDouble() * 2) - 1);
        }

        return x;
    }
}
