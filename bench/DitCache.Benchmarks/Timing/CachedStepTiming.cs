using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>cachedstep [threads] [gemm] [rounds] [specs]</c>: where the time of a cached sampling step goes, for the shipped
/// model with 10 images and CFG (a 20-row forward), all variants alternating in one process (<see cref="Timer"/>):
/// a full forward; per cache spec a cached forward (the policy parked at a cached step), its 24 forecasts alone, and
/// its 24 records of a full step alone; and the "shell" of a cached step (every module stood in for by nothing:
/// embedders, adaLN, gated residuals, final layer).
/// </summary>
internal static class CachedStepTiming
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2;
        string gemmName = args.Length > 2 ? args[2] : "auto";
        int rounds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 15;
        string[] specs = args.Length > 4 ? args[4].Split('+') : ["fora:n=5", "taylorseer:n=5", "foca:n=5"];
        IGemm gemm = GemmFactory.Create(gemmName, threads);
        var model = new DitModel(DefaultModel.LoadWeights(null), gemm, threads);
        DitConfig c = model.Config;
        const int N = 10, Steps = 50;
        int[] labels = Enumerable.Range(0, N).ToArray();
        float[] x = new float[N * c.InChannels * c.InputSize * c.InputSize];
        new GaussianNoise(1).Fill(x);
        float[] eps = new float[N * c.OutChannels * c.InputSize * c.InputSize];
        DitRunState state = model.CreateState(2 * N);
        var diffusion = new GaussianDiffusion(Steps);
        var run = new CacheRunInfo(Steps, diffusion.SamplingTimesteps, 2 * N, c.Tokens, c.Hidden, c.Depth);
        float[] feature = new float[run.FeatureLength];
        new GaussianNoise(2).Fill(feature);
        float[] scratch = new float[run.FeatureLength];
        var sites = Enumerable.Range(0, c.Depth).SelectMany(l => new[] { new FeatureSite(l, Site.Attn), new FeatureSite(l, Site.Mlp) }).ToArray();

        var names = new List<string> { "full forward", "cached-step shell" };
        var variants = new List<Action>
        {
            () => model.ForwardWithCfg(x, 500f, labels, 4f, c.InChannels, state, NoCache.Instance, eps),
            () => model.ForwardWithCfg(x, 500f, labels, 4f, c.InChannels, state, ShellPolicy.Instance, eps),
        };
        // The shell's parts, on the model's own weights and shapes.
        DitWeights w = model.Weights;
        int b = 2 * N, d = c.Hidden, t = c.Tokens, rows = b * t;
        float[] silu = new float[b * d], mod = new float[b * 6 * d], xs = new float[rows * d], h = new float[rows * d];
        float[] im2col = new float[rows * c.InChannels * c.Patch * c.Patch], finalOut = new float[rows * c.Patch * c.Patch * c.OutChannels];
        float[] img = new float[b * c.InChannels * c.InputSize * c.InputSize], outImg = new float[b * c.OutChannels * c.InputSize * c.InputSize];
        new GaussianNoise(3).Fill(silu);
        new GaussianNoise(4).Fill(xs);
        float[] fewScratch = new float[Kernels.LinearFewRowsScratchSize(d)];
        int distinct = N + 1;                                   // CFG rows: N classes and the null label
        names.Add($"  12 adaLN Linears ({distinct} distinct rows)");
        variants.Add(() =>
        {
            for (int l = 0; l < c.Depth; l++)
            {
                Kernels.LinearFewRows(silu.AsSpan(0, distinct * d), w.Blocks[l].AdaLn.W, w.Blocks[l].AdaLn.B, mod.AsSpan(0, distinct * 6 * d),
                    distinct, d, 6 * d, fewScratch, threads);
            }
        });
        names.Add("  24 GatedResidualAdd");
        variants.Add(() =>
        {
            for (int k = 0; k < 2 * c.Depth; k++)
            {
                Kernels.GatedResidualAdd(xs, feature, mod, 6 * d, 2 * d, b, t, d);
            }
        });
        names.Add("  patch embed");
        variants.Add(() => Kernels.PatchEmbed(gemm, img, w.PatchEmbed.W, w.PatchEmbed.B, xs, im2col, b, c.InChannels, c.InputSize, c.InputSize, c.Patch, d));
        names.Add("  final layer (adaLN, LN+mod, Linear)");
        variants.Add(() =>
        {
            Kernels.LinearFewRows(silu.AsSpan(0, distinct * d), w.FinalAdaLn.W, w.FinalAdaLn.B, mod.AsSpan(0, distinct * 2 * d), distinct, d, 2 * d,
                fewScratch, threads);
            Kernels.LayerNormModulate(xs, h, mod, 2 * d, 0, d, b, t, d);
            Kernels.Linear(gemm, h, w.FinalLinear.W, w.FinalLinear.B, finalOut, rows, d, c.Patch * c.Patch * c.OutChannels);
        });
        names.Add("  unpatchify");
        variants.Add(() => Kernels.Unpatchify(finalOut, outImg, b, c.OutChannels, c.InputSize, c.InputSize, c.Patch));

        foreach (string spec in specs)
        {
            ICacheOptions options = CacheRegistry.Parse(spec);
            ICachePolicy cached = Park(options.Build(run), sites, feature, scratch);
            names.Add($"{spec} cached forward");
            variants.Add(() => model.ForwardWithCfg(x, 500f, labels, 4f, c.InChannels, state, cached, eps));
            names.Add($"{spec} 24 forecasts");
            variants.Add(() =>
            {
                foreach (FeatureSite s in sites)
                {
                    cached.TryForecast(s, scratch);
                }
            });
            names.Add($"{spec} 24 records");
            variants.Add(Records(options, sites.Length, feature));
        }

        if (args.Length > 5)
        {
            // Profiling aid: run one variant (by index) for the given number of seconds, e.g. under perf record.
            int which = int.Parse(args[5], CultureInfo.InvariantCulture);
            double seconds = args.Length > 6 ? double.Parse(args[6], CultureInfo.InvariantCulture) : 10;
            Console.WriteLine($"looping '{names[which]}' for {seconds} s");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                variants[which]();
            }

            return;
        }

        double[] ms = Timer.Compare(rounds, 3, [.. variants]);
        Console.WriteLine($"shipped model, {N} images with CFG ({2 * N} rows), gemm {gemm.Name}, {threads} threads, median of {rounds} rounds");
        for (int i = 0; i < ms.Length; i++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i,3} {names[i],-40} {ms[i],8:F3} ms  {ms[i] / ms[0] * 100,6:F2} % of a full forward"));
        }
    }

    /// <summary>
    /// The bookkeeping of a full step's 24 records, called through the forecasters' public kernels on per-site stacks
    /// (a policy's Record cannot repeat a step: the gap to the last full step would be 0).
    /// </summary>
    private static Action Records(ICacheOptions options, int siteCount, float[] feature)
    {
        int length = feature.Length;
        switch (options)
        {
            case ForaOptions:
            {
                float[][] store = Enumerable.Range(0, siteCount).Select(_ => new float[length]).ToArray();
                return () =>
                {
                    foreach (float[] s in store)
                    {
                        feature.CopyTo(s, 0);
                    }
                };
            }

            case TaylorSeerOptions t:
            {
                int factors = t.MaxOrder + 1;
                float[][] stack = Enumerable.Range(0, siteCount).Select(_ => new float[factors * length]).ToArray();
                return () =>
                {
                    foreach (float[] s in stack)
                    {
                        TaylorForecaster.UpdateFactors(s, length, factors, factors, feature, t.Interval);
                    }
                };
            }

            case FocaOptions f:
            {
                float[][] stack = Enumerable.Range(0, siteCount).Select(_ => new float[FocaForecaster.Slots * length]).ToArray();
                return () =>
                {
                    foreach (float[] s in stack)
                    {
                        // The steady state: D from the old Ffull, F stored over it in the same pass.
                        Span<float> full = s.AsSpan(2 * length, length);
                        FocaForecaster.RecordFull(feature, full, s.AsSpan(FocaForecaster.DerivativeSlot * length, length), full,
                            hasFull: true, gap: f.Interval);
                    }
                };
            }

            default:
                return () => { };
        }
    }

    /// <summary>
    /// Steps the policy through a run on stand-in features until it reaches a cached step after at least two full
    /// ones, and leaves it there (every later forecast repeats that step's arithmetic).
    /// </summary>
    private static ICachePolicy Park(ICachePolicy policy, FeatureSite[] sites, float[] feature, float[] scratch)
    {
        for (int n = 0; ; n++)
        {
            policy.BeginStep(n, 999 - n);
            if (n >= 2 && policy.TryForecast(sites[0], scratch))
            {
                return policy;
            }

            foreach (FeatureSite s in sites)
            {
                if (!policy.TryForecast(s, scratch))
                {
                    policy.Record(s, feature);
                }
            }
        }
    }

    /// <summary>Stands in for every module with whatever the feature buffer holds: the cost of a cached step minus the forecast.</summary>
    private sealed class ShellPolicy : ICachePolicy
    {
        public static readonly ShellPolicy Instance = new();

        public long CacheBytes => 0;

        public void BeginStep(int n, float timestep)
        {
        }

        public bool TryForecast(FeatureSite site, Span<float> output) => true;

        public void Record(FeatureSite site, ReadOnlySpan<float> output)
        {
        }
    }
}
