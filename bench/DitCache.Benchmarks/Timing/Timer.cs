using System;
using System.Diagnostics;
using System.Linq;

namespace DitCache.Benchmarks;

/// <summary>
/// Side-by-side timing for a noisy shared machine: variants run in alternation, round after round, so that load
/// changes hit them alike; each round times a batch of calls; the median round is reported.
/// </summary>
internal static class Timer
{
    /// <summary>Median milliseconds per call of each variant over <paramref name="rounds"/> alternating rounds.</summary>
    public static double[] Compare(int rounds, int callsPerRound, params Action[] variants)
    {
        foreach (Action v in variants)
        {
            for (int i = 0; i < Math.Max(2, callsPerRound); i++)
            {
                v();                                            // JIT to tier 1, buffers touched
            }
        }

        var samples = new double[variants.Length][];
        for (int k = 0; k < variants.Length; k++)
        {
            samples[k] = new double[rounds];
        }

        var clock = new Stopwatch();
        for (int r = 0; r < rounds; r++)
        {
            for (int k0 = 0; k0 < variants.Length; k0++)
            {
                int k = (k0 + r) % variants.Length;             // rotate the order too
                clock.Restart();
                for (int i = 0; i < callsPerRound; i++)
                {
                    variants[k]();
                }

                samples[k][r] = clock.Elapsed.TotalMilliseconds / callsPerRound;
            }
        }

        return samples.Select(s => s.Order().ElementAt(s.Length / 2)).ToArray();
    }
}
