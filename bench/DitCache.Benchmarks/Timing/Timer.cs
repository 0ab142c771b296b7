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
    public static double[] Compare(int rounds, int callsPerRound, params Action[] variants) =>
        Compare(rounds, callsPerRound, threadCpu: false, variants);

    /// <summary>
    /// As <see cref="Compare(int, int, Action[])"/>; with <paramref name="threadCpu"/> each batch is timed by the calling
    /// thread's CPU time (CLOCK_THREAD_CPUTIME_ID) instead of the wall clock, so that time the thread spends descheduled
    /// while other processes run is not counted. Only meaningful for work done on the calling thread alone.
    /// </summary>
    public static double[] Compare(int rounds, int callsPerRound, bool threadCpu, params Action[] variants)
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
                double cpu0 = threadCpu ? ThreadCpuMs() : 0;
                for (int i = 0; i < callsPerRound; i++)
                {
                    variants[k]();
                }

                double elapsed = threadCpu ? ThreadCpuMs() - cpu0 : clock.Elapsed.TotalMilliseconds;
                samples[k][r] = elapsed / callsPerRound;
            }
        }

        return samples.Select(s => s.Order().ElementAt(s.Length / 2)).ToArray();
    }

    // CPU time of the calling thread in milliseconds (Linux; clock id 3 = CLOCK_THREAD_CPUTIME_ID).
    private static unsafe double ThreadCpuMs()
    {
        long* ts = stackalloc long[2];
        return ClockGetTime(3, ts) == 0 ? (ts[0] * 1e3) + (ts[1] * 1e-6) : double.NaN;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int ClockGetTime(int clockId, long* timespec);
}
