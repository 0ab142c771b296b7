using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>
/// FBCache, DBCache and Δ-DiT on toy blocks whose effect is analytic: block l at step n adds the constant
/// <c>c(l, n)</c> to every element, so every residual, diff and cached output below is worked out by hand from c.
/// The driver calls the block-level seam the way DitModel.Forward does (SkipBlocks before every block reached,
/// RecordBlock after every block that ran).
/// </summary>
public class BlockCacheTests
{
    private const int Length = 13;

    private static CacheRunInfo Run(int steps, int depth) =>
        new(steps, Enumerable.Range(0, steps).Select(n => 999f - (n * 20f)).ToArray(), 1, Length, 1, depth);

    /// <summary>Per step: the blocks that ran and the stack output (its first element; all are equal).</summary>
    private static (List<int>[] Ran, double[] Output) Drive(ICachePolicy policy, int steps, int depth, Func<int, int, double> c,
        Func<int, double>? input = null)
    {
        var ran = new List<int>[steps];
        var output = new double[steps];
        var x = new float[Length];
        for (int n = 0; n < steps; n++)
        {
            policy.BeginStep(n, 0);
            ran[n] = [];
            Array.Fill(x, (float)(input?.Invoke(n) ?? 0.5 * n));
            for (int l = 0; l < depth;)
            {
                int next = policy.SkipBlocks(l, x);
                if (next == l)
                {
                    for (int i = 0; i < Length; i++)
                    {
                        x[i] += (float)c(l, n);
                    }

                    policy.RecordBlock(l, x);
                    ran[n].Add(l);
                    l++;
                }
                else
                {
                    Assert.InRange(next, l + 1, depth);
                    l = next;
                }
            }

            Assert.All(x, v => Assert.Equal(x[0], v));
            output[n] = x[0];
        }

        return (ran, output);
    }

    [Fact]
    public void FBCacheSkipsTheRestWhenBlockZerosResidualMovesLessThanT()
    {
        // Block 0 adds a(n); its residual relative change |a(n−1)·… − a(n)| / |a_prev| against the last COMPUTED step:
        // a = 1, 1, 1.05, 1.12, 1.5, 1.52, 1.6. With t = 0.1 and warmup 1: n=0 warm-up; n=1 diff 0 → cache;
        // n=2 diff 0.05 vs a_prev = 1 (n=0 computed) → cache; n=3 diff 0.12 → compute (a_prev ← 1.12);
        // n=4 |1.12−1.5|/1.12 = 0.339 → compute (a_prev ← 1.5); n=5 0.0133 → cache; n=6 |1.5−1.6|/1.5 = 0.0667 → cache.
        double[] a = [1, 1, 1.05, 1.12, 1.5, 1.52, 1.6];
        double C(int l, int n) => l == 0 ? a[n] : (0.25 * l) + (0.01 * n);
        var policy = (DBCache)new FBCacheOptions(0.1, Warmup: 1).Build(Run(7, 3));
        (List<int>[] ran, double[] output) = Drive(policy, 7, 3, C);
        bool[] computed = ran.Select(r => r.Count == 3).ToArray();
        Assert.Equal([true, false, false, true, true, false, false], computed);
        Assert.All(ran, r => Assert.Contains(0, r));                                       // block 0 always runs

        // A cached step: h = x_n + a(n) + R, R = blocks 1 and 2 of the last computed step m: 0.75 + 0.02·m.
        Assert.Equal((0.5 * 1) + a[1] + 0.75, output[1], 5);                              // m = 0
        Assert.Equal((0.5 * 2) + a[2] + 0.75, output[2], 5);                              // m = 0
        Assert.Equal((0.5 * 5) + a[5] + 0.75 + 0.08, output[5], 5);                       // m = 4
        Assert.Equal((0.5 * 6) + a[6] + 0.75 + 0.08, output[6], 5);
        Assert.Equal(0.1 / 1.5, policy.LastDiff, 6);
    }

    [Fact]
    public void DBCacheRunsFrontAndBackBlocksAndCachesTheMiddle()
    {
        // F = 2, B = 1 of 5 blocks: blocks 0, 1 and 4 always run; 2, 3 are the middle. The decision uses the residual
        // of blocks 0..1 (c(0)+c(1)), here constant over steps, so with t = 0.05 every step after warm-up caches.
        double C(int l, int n) => l < 2 ? 0.5 : (l + 1) * (1 + (0.1 * n));
        (List<int>[] ran, double[] output) = Drive(new DBCacheOptions(2, 1, 0.05, Warmup: 2).Build(Run(5, 5)), 5, 5, C);
        Assert.Equal([0, 1, 2, 3, 4], ran[0]);
        Assert.Equal([0, 1, 2, 3, 4], ran[1]);                                             // warm-up
        Assert.Equal([0, 1, 4], ran[2]);
        Assert.Equal([0, 1, 4], ran[4]);

        // n = 3: x = 1.5, + 1.0 (front), + R from n = 1: 3·1.1 + 4·1.1 = 7.7, + block 4 now: 5·1.3 = 6.5.
        Assert.Equal(1.5 + 1.0 + 7.7 + 6.5, output[3], 4);
    }

    [Fact]
    public void TheRunCapFollowsCacheDitsCounter()
    {
        // t ≥ 1 always allows caching, so only the guards decide. maxrun = 2 with cache-dit's counter: n=0 computes
        // (nothing stored yet); n=1 cached (counter 1); n=2 cached (consecutive: 2); n=3 counter ≥ 2 → reset to 0 and
        // compute; n=4 cached after a gap (counter stays 0); n=5 consecutive from 0 → 2; n=6 compute; n=7, n=8 cached;
        // n=9 compute.
        (List<int>[] ran, _) = Drive(new FBCacheOptions(1.0, Warmup: 0, MaxRun: 2).Build(Run(10, 3)), 10, 3, (l, n) => 1);
        Assert.Equal([0, 3, 6, 9], Enumerable.Range(0, 10).Where(n => ran[n].Count == 3));
    }

    [Fact]
    public void TheCachedStepCapStopsCachingForTheRestOfTheRun()
    {
        (List<int>[] ran, _) = Drive(new FBCacheOptions(1.0, Warmup: 0, MaxCached: 3).Build(Run(8, 3)), 8, 3, (l, n) => 1);
        Assert.Equal([0, 4, 5, 6, 7], Enumerable.Range(0, 8).Where(n => ran[n].Count == 3));
    }

    [Fact]
    public void ThresholdZeroNeverCaches()
    {
        (List<int>[] ran, _) = Drive(new FBCacheOptions(0, Warmup: 0).Build(Run(6, 3)), 6, 3, (l, n) => 1);
        Assert.All(ran, r => Assert.Equal(3, r.Count));
    }

    [Fact]
    public void DeltaDitCachesTheRearGroupBeforeTheBoundaryAndTheFrontGroupAfter()
    {
        // depth 4, k = 2, N = 2, b = 3: updates at n = 0, 2, 4; n = 1 skips the rear blocks 2, 3, n = 3 and 5 the front
        // blocks 0, 1. c(l, n) = (l + 1)·(1 + n).
        double C(int l, int n) => (l + 1) * (1 + n);
        (List<int>[] ran, double[] output) = Drive(new DeltaDitOptions(2, 3, 2).Build(Run(6, 4)), 6, 4, C);
        Assert.Equal([0, 1, 2, 3], ran[0]);
        Assert.Equal([0, 1], ran[1]);
        Assert.Equal([0, 1, 2, 3], ran[2]);
        Assert.Equal([2, 3], ran[3]);
        Assert.Equal([2, 3], ran[5]);

        // n = 1: x = 0.5, blocks 0, 1 now: (1 + 2)·2 = 6, then Δ_rear of n = 0: (3 + 4)·1 = 7.
        Assert.Equal(0.5 + 6 + 7, output[1], 5);

        // n = 3: x = 1.5, Δ_front of n = 2: (1 + 2)·3 = 9, then blocks 2, 3 now: (3 + 4)·4 = 28.
        Assert.Equal(1.5 + 9 + 28, output[3], 5);

        // n = 5: Δ_front of n = 4: 3·5 = 15, blocks 2, 3 now: 7·6 = 42.
        Assert.Equal(2.5 + 15 + 42, output[5], 5);
    }

    [Fact]
    public void DeltaDitDefaultsToHalfTheStepsAndHalfTheBlocks()
    {
        var options = new DeltaDitOptions();
        Assert.Equal(25, options.BoundaryFor(50));
        Assert.Equal(6, options.BlocksFor(12));
        Assert.Equal("delta-dit:n=2", options.Spec);
        Assert.Equal("delta-dit:n=3,b=10,blocks=4", CacheRegistry.Parse("delta-dit:n=3,b=10,blocks=4").Spec);
        Assert.Equal([true, false, false, true, false, false, true], new DeltaDitOptions(3).FullSteps(7));
    }

    [Theory]
    [InlineData("fbcache:t=-0.1", "t=")]
    [InlineData("fbcache:maxrun=-2", "maxrun")]
    [InlineData("dbcache:f=0", "f=0")]
    [InlineData("dbcache:b=-1", "b=-1")]
    [InlineData("delta-dit:n=0", "n=0")]
    [InlineData("delta-dit:blocks=0", "blocks=0")]
    [InlineData("fbcache:q=1", "unknown knob")]
    public void BadKnobsAreRejectedByName(string spec, string named)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Contains(named, e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.ExitCode);
    }

    [Fact]
    public void SizesThatDoNotFitTheModelFailAtBuild()
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse("dbcache:f=2,b=1").Build(Run(10, 3)));
        Assert.Contains("no middle block", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse("delta-dit:blocks=5").Build(Run(10, 3)));
        Assert.Contains("has 3 blocks", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SpecsRoundTrip()
    {
        Assert.Equal("fbcache:t=0.08", CacheRegistry.Parse("fbcache").Spec);
        Assert.Equal("fbcache:t=0.12,warmup=4,maxrun=3", CacheRegistry.Parse("fbcache:t=0.12,warmup=4,maxrun=3").Spec);
        Assert.Equal("dbcache:f=8,b=0,t=0.08", CacheRegistry.Parse("dbcache").Spec);
        Assert.Equal("dbcache:f=4,b=2,t=0.2,maxcached=10", CacheRegistry.Parse("dbcache:f=4,b=2,t=0.2,maxcached=10").Spec);
    }
}
