using System;
using System.Collections.Generic;
using System.Linq;

namespace DitCache.Caching.Tests;

/// <summary>
/// Drives a policy through the seam the way <c>DitModel.Forward</c> does, with dummy blocks whose module outputs are
/// analytic: for each step BeginStep, then per block and site TryForecast, and on a miss "compute" the feature and
/// Record it.
/// </summary>
internal sealed class SeamHarness
{
    public const int Depth = 3;
    public const int Length = 37;   // (B, T, D) of a toy run: odd so vector tails are exercised

    public static CacheRunInfo Run(int steps) =>
        new(steps, Enumerable.Range(0, steps).Select(n => 999f - (n * 20f)).ToArray(), 1, Length, 1, Depth);

    /// <summary>A non-uniform descending grid: t_n = round(999·(1 − n/S)^1.5), gaps shrinking toward t = 0.</summary>
    public static float[] CurvedTimesteps(int steps) =>
        Enumerable.Range(0, steps).Select(n => (float)Math.Round(999 * Math.Pow(1 - ((double)n / steps), 1.5))).ToArray();

    public static CacheRunInfo Run(int steps, float[] timesteps) => new(steps, timesteps, 1, Length, 1, Depth);

    /// <summary>Runs every step; returns which steps computed every module and the module outputs per step and site.</summary>
    public static (bool[] Computed, float[][][] Outputs) Drive(ICachePolicy policy, int steps, Func<int, FeatureSite, int, double> feature)
    {
        var computed = new bool[steps];
        var outputs = new float[steps][][];
        var buffer = new float[Length];
        for (int n = 0; n < steps; n++)
        {
            policy.BeginStep(n, 999f - (n * 20f));
            outputs[n] = new float[2 * Depth][];
            int misses = 0;
            for (int l = 0; l < Depth; l++)
            {
                foreach (Site s in new[] { Site.Attn, Site.Mlp })
                {
                    var site = new FeatureSite(l, s);
                    if (!policy.TryForecast(site, buffer))
                    {
                        for (int i = 0; i < Length; i++)
                        {
                            buffer[i] = (float)feature(n, site, i);
                        }

                        policy.Record(site, buffer);
                        misses++;
                    }

                    outputs[n][site.Index] = buffer.ToArray();
                }
            }

            computed[n] = misses == 2 * Depth;
        }

        return (computed, outputs);
    }

    public static int[] Ordinals(bool[] full) => full.Select((f, n) => (f, n)).Where(p => p.f).Select(p => p.n).ToArray();

    public static IEnumerable<int> Range(int start, int stop, int step)
    {
        for (int n = start; n <= stop; n += step)
        {
            yield return n;
        }
    }
}
