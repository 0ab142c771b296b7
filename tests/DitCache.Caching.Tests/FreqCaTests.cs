using System;
using System.Linq;
using DitCache.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace DitCache.Caching.Tests;

/// <summary>
/// FreqCa (docs/methods.md §5.10): the frequency split against a naive float64 DCT-II / DCT-III round trip and against
/// analytic patterns, and the policy driven through the block seam with a stack whose residual is known in closed form.
/// </summary>
public class FreqCaTests
{
    private readonly ITestOutputHelper _output;

    public FreqCaTests(ITestOutputHelper output)
    {
        _output = output;
    }

    /// <summary>The orthonormal DCT-II basis function u at grid position k of n (closed form, float64).</summary>
    private static double Basis(int n, int u, int k) => Math.Sqrt((u == 0 ? 1.0 : 2.0) / n) * Math.Cos(Math.PI * ((2 * k) + 1) * u / (2.0 * n));

    /// <summary>
    /// The low band the naive way: the full 2-D DCT-II of every (image, channel) plane by the defining double sum, the
    /// coefficients outside u &lt; ρh, v &lt; ρw zeroed, the inverse (DCT-III) by its double sum. No projection matrices.
    /// </summary>
    private static double[] NaiveLow(float[] x, int images, int h, int w, int d, double cutoff)
    {
        var low = new double[x.Length];
        for (int b = 0; b < images; b++)
        {
            for (int c = 0; c < d; c++)
            {
                double At(int i, int j) => x[(((b * h) + i) * w * d) + (j * d) + c];
                var coefficient = new double[h, w];
                for (int u = 0; u < h; u++)
                {
                    for (int v = 0; v < w; v++)
                    {
                        if (!(u < cutoff * h) || !(v < cutoff * w))
                        {
                            continue;   // masked: never needed
                        }

                        double sum = 0;
                        for (int i = 0; i < h; i++)
                        {
                            for (int j = 0; j < w; j++)
                            {
                                sum += Basis(h, u, i) * Basis(w, v, j) * At(i, j);
                            }
                        }

                        coefficient[u, v] = sum;
                    }
                }

                for (int i = 0; i < h; i++)
                {
                    for (int j = 0; j < w; j++)
                    {
                        double sum = 0;
                        for (int u = 0; u < h; u++)
                        {
                            for (int v = 0; v < w; v++)
                            {
                                sum += Basis(h, u, i) * Basis(w, v, j) * coefficient[u, v];
                            }
                        }

                        low[(((b * h) + i) * w * d) + (j * d) + c] = sum;
                    }
                }
            }
        }

        return low;
    }

    private static float[] Random(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() * 4) - 2)).ToArray();
    }

    private static float[] Low(FrequencySplit split, float[] x)
    {
        var low = new float[x.Length];
        split.Low(x, low, new float[x.Length]);
        return low;
    }

    private static double MaxAbs(ReadOnlySpan<float> a)
    {
        double m = 0;
        foreach (float v in a)
        {
            m = Math.Max(m, Math.Abs(v));
        }

        return m;
    }

    [Theory]
    [InlineData(4, 4, 3, 0.5, 2)]      // the fixture DiT's grid
    [InlineData(16, 16, 19, 0.25, 2)]  // DiT-S/2 and -XL/2 at 256²: 16 × 16, odd channel count for vector tails
    [InlineData(5, 7, 3, 0.3, 3)]      // a non-square, odd grid (the split is general; the policy uses square grids)
    [InlineData(6, 6, 2, 1.0, 1)]      // ρ = 1: everything is low
    public void LowBandMatchesTheNaiveDctRoundTrip(int h, int w, int d, double cutoff, int images)
    {
        var split = new FrequencySplit(h, w, d, cutoff);
        float[] x = Random(images * h * w * d, h + (7 * w));
        float[] low = Low(split, x);
        double[] naive = NaiveLow(x, images, h, w, d, cutoff);
        double scale = naive.Max(Math.Abs), worst = 0;
        for (int i = 0; i < x.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(low[i] - naive[i]));
        }

        // float32 projections of (h + w) terms each; 1e-5 of the largest value is ~50 float32 ulps.
        Assert.True(worst <= 1e-5 * scale, $"{h}×{w}, ρ {cutoff}: max |low − naive| {worst:E2} over max |naive| {scale:E2}");
        Assert.Equal(Math.Max(1, (int)Math.Ceiling(cutoff * h)), split.LowRows);
    }

    [Fact]
    public void BandsReconstructTheInputAndTheProjectionIsIdempotentAndOrthogonal()
    {
        var split = new FrequencySplit(16, 16, 5, 0.25);
        float[] x = Random(2 * 256 * 5, 3);
        float[] low = Low(split, x);
        float[] high = x.Zip(low, (a, b) => a - b).ToArray();
        double scale = MaxAbs(x);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(low[i] + high[i] - x[i]) <= 1e-6 * scale, $"element {i}: low + high = {low[i] + high[i]}, x = {x[i]}");
        }

        // A projection: low(low) = low, low(high) = 0, and the bands are orthogonal (the DCT is orthonormal).
        float[] again = Low(split, low);
        float[] ofHigh = Low(split, high);
        double dot = 0, norm = 0;
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(again[i] - low[i]) <= 1e-5 * scale, $"element {i}: low(low) {again[i]} vs low {low[i]}");
            Assert.True(Math.Abs(ofHigh[i]) <= 1e-5 * scale, $"element {i}: low(high) = {ofHigh[i]}");
            dot += (double)low[i] * high[i];
            norm += (double)x[i] * x[i];
        }

        Assert.True(Math.Abs(dot) <= 1e-5 * norm, $"<low, high> = {dot:E2} of |x|² {norm:E2}");
    }

    [Fact]
    public void SmoothPatternsStayLowAndCheckerboardsGoHigh()
    {
        const int side = 16, d = 2;
        var split = new FrequencySplit(side, side, d, 0.25);   // keeps u, v < 4
        float[] Pattern(Func<int, int, int, double> f)
        {
            var x = new float[side * side * d];
            for (int i = 0; i < side; i++)
            {
                for (int j = 0; j < side; j++)
                {
                    for (int c = 0; c < d; c++)
                    {
                        x[(((i * side) + j) * d) + c] = (float)f(i, j, c);
                    }
                }
            }

            return x;
        }

        // Constant, and the DCT basis (3, 1) (inside the band), per channel scaled: all low, nothing high.
        foreach (float[] smooth in new[] { Pattern((_, _, c) => 1.5 + c), Pattern((i, j, c) => (c + 1) * Basis(side, 3, i) * Basis(side, 1, j)) })
        {
            float[] low = Low(split, smooth);
            double scale = MaxAbs(smooth);
            for (int k = 0; k < smooth.Length; k++)
            {
                Assert.True(Math.Abs(low[k] - smooth[k]) <= 1e-6 * scale, $"smooth pattern, element {k}: low {low[k]} vs {smooth[k]}");
            }
        }

        // The basis (4, 0) just past the cutoff, and (15, 15): all high.
        foreach (float[] sharp in new[] { Pattern((i, j, _) => Basis(side, 4, i) * Basis(side, 0, j)), Pattern((i, j, _) => Basis(side, 15, i) * Basis(side, 15, j)) })
        {
            Assert.True(MaxAbs(Low(split, sharp)) <= 1e-6 * MaxAbs(sharp), "a pattern outside the band leaked into the low band");
        }

        // The checkerboard (−1)^(i+j) is not one DCT basis function, but its energy sits at the top of the spectrum: the
        // low band holds 2.7e-4 of it (numpy, the same mask), so 1e-3 separates it from any smooth leak.
        float[] board = Pattern((i, j, _) => ((i + j) % 2 == 0) ? 1 : -1);
        float[] boardLow = Low(split, board);
        double fraction = boardLow.Sum(v => (double)v * v) / board.Sum(v => (double)v * v);
        _output.WriteLine($"checkerboard: low-band energy fraction {fraction:E3}");
        Assert.True(fraction < 1e-3, $"checkerboard low-band energy {fraction:E3}");
        Assert.True(fraction > 1e-4, $"checkerboard low-band energy {fraction:E3}: the numpy value is 2.7e-4");
    }

    [Fact]
    public void SplitRefusesMismatchedLengthsAndBadCutoffs()
    {
        var split = new FrequencySplit(4, 4, 2, 0.5);
        Assert.Throws<ArgumentException>(() => split.Low(new float[33], new float[33], new float[33]));
        Assert.Throws<ArgumentException>(() => split.Low(new float[32], new float[31], new float[32]));
        Assert.Throws<ArgumentException>(() => split.Low(new float[32], new float[32], new float[16]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrequencySplit(4, 4, 2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrequencySplit(4, 4, 2, 1.01));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrequencySplit(4, 4, 2, double.NaN));
    }

    // ------------------------------------------------------------------------------------------------------------
    // The policy through the block seam. The "stack" adds a residual R(n) = a(n)·L + b(n)·H to its input, L a pattern
    // inside the low band, H one outside it; block outputs before the last are the input (only the last is recorded).

    private const int Side = 4, Hidden = 3, Rows = 2, Depth = 3;

    private static CacheRunInfo Run(int steps, int depth = Depth, int side = Side, int hidden = Hidden, int rows = Rows) =>
        new(steps, Enumerable.Range(0, steps).Select(n => 999f - (n * 20f)).ToArray(), rows, side * side, hidden, depth);

    private static float[] Plane(Func<int, int, int, double> f)
    {
        var x = new float[Rows * Side * Side * Hidden];
        for (int b = 0; b < Rows; b++)
        {
            for (int i = 0; i < Side; i++)
            {
                for (int j = 0; j < Side; j++)
                {
                    for (int c = 0; c < Hidden; c++)
                    {
                        x[(((((b * Side) + i) * Side) + j) * Hidden) + c] = (float)f(b, (i * Side) + j, c);
                    }
                }
            }
        }

        return x;
    }

    // Cutoff 0.5 on the 4 × 4 grid keeps u, v < 2: (1, 0) is low, (3, 2) is high.
    private static readonly float[] s_lowPattern = Plane((b, t, c) => (1 + b + (0.5 * c)) * Basis(Side, 1, t / Side) * Basis(Side, 0, t % Side));
    private static readonly float[] s_highPattern = Plane((b, t, c) => (2 - b + c) * Basis(Side, 3, t / Side) * Basis(Side, 2, t % Side));

    /// <summary>
    /// Drives <paramref name="steps"/> steps; at each the stack input is <c>0.1·n + pattern</c> (any input: the residual
    /// is what is cached); returns which steps ran the blocks and the stack output per step.
    /// </summary>
    private static (bool[] Ran, float[][] Output) Drive(ICachePolicy policy, int steps, Func<int, double> a, Func<int, double> b)
    {
        var ran = new bool[steps];
        var outputs = new float[steps][];
        for (int n = 0; n < steps; n++)
        {
            policy.BeginStep(n, 999f - (n * 20f));
            float[] x = Plane((_, t, c) => (0.1 * n) + (0.01 * t) - (0.2 * c));
            int next = policy.SkipBlocks(0, x);
            if (next == 0)
            {
                ran[n] = true;
                for (int l = 0; l < Depth; l++)
                {
                    if (l > 0)
                    {
                        Assert.Equal(l, policy.SkipBlocks(l, x));   // a full step never skips from a later block
                    }

                    if (l == Depth - 1)
                    {
                        for (int k = 0; k < x.Length; k++)
                        {
                            x[k] += (float)((a(n) * s_lowPattern[k]) + (b(n) * s_highPattern[k]));
                        }
                    }

                    policy.RecordBlock(l, x);
                }
            }
            else
            {
                Assert.Equal(Depth, next);
            }

            outputs[n] = x;
        }

        return (ran, outputs);
    }

    [Fact]
    public void CachedStepsReuseTheLowBandAndForecastALinearHighBandExactly()
    {
        // σ = 1/√2, o = 1: the Hermite first-order weight is 2σ²x = x (docs/methods.md §5.9), so a high band linear in n
        // is forecast exactly; the low band's coefficient jumps around (no continuity) and must be held at its value at
        // the last full step, not extrapolated.
        const int steps = 20;
        Func<int, double> a = n => n % 3 == 0 ? 2.0 : -1.0 + (0.3 * n);
        Func<int, double> b = n => 0.5 - (0.25 * n);
        ICachePolicy policy = new FreqCaOptions(4, 1, 2, 1 / Math.Sqrt(2), 0.5).Build(Run(steps));
        (bool[] ran, float[][] output) = Drive(policy, steps, a, b);
        int last = 0;
        for (int n = 0; n < steps; n++)
        {
            if (ran[n])
            {
                last = n;
                continue;
            }

            float[] expected = Plane((_, t, c) => (0.1 * n) + (0.01 * t) - (0.2 * c));
            for (int k = 0; k < expected.Length; k++)
            {
                expected[k] += (float)((a(last) * s_lowPattern[k]) + (b(n) * s_highPattern[k]));
            }

            double scale = MaxAbs(expected), worst = 0;
            for (int k = 0; k < expected.Length; k++)
            {
                worst = Math.Max(worst, Math.Abs(output[n][k] - expected[k]));
            }

            // float32 split and differences of O(1) values: 1e-5 relative.
            Assert.True(worst <= 1e-5 * scale, $"step {n} (last full {last}): max error {worst:E2} of {scale:E2}");
        }

        Assert.Contains(false, ran);
    }

    [Fact]
    public void SecondOrderForecastIsTheScaledHermiteSeriesOfTheHighBandsDifferences()
    {
        // A quadratic high band b(n) = 1 + 0.2n − 0.05n² at full steps 0, 1, 5, 9, … (n = 4): the factors by hand with
        // the official rule (latest gap only), and the forecast d_0 + d_1·σH_1(σx) + d_2·σ²H_2(σx)/2 with the closed
        // forms H_1(y) = 2y, H_2(y) = 4y² − 2 at σ = 0.5; the low band is held.
        const int steps = 16;
        const double sigma = 0.5;
        Func<int, double> a = n => Math.Cos(n);
        Func<int, double> b = n => 1 + (0.2 * n) - (0.05 * n * n);
        ICachePolicy policy = new FreqCaOptions(4, 2, 2, sigma, 0.5).Build(Run(steps));
        (bool[] ran, float[][] output) = Drive(policy, steps, a, b);
        Assert.Equal([0, 1, 5, 9, 13], SeamHarness.Ordinals(ran));

        double d0 = 0, d1 = 0, d2 = 0;
        int last = -1, held = 0;
        for (int n = 0; n < steps; n++)
        {
            if (ran[n])
            {
                double nd0 = b(n), nd1 = held >= 1 ? (nd0 - d0) / (n - last) : 0, nd2 = held >= 2 ? (nd1 - d1) / (n - last) : 0;
                held = Math.Min(held + 1, 3);
                (d0, d1, d2, last) = (nd0, nd1, nd2, n);
                continue;
            }

            double y = sigma * (n - last);
            double forecast = d0 + (d1 * sigma * 2 * y) + (d2 * sigma * sigma * ((4 * y * y) - 2) / 2);
            float[] expected = Plane((_, t, c) => (0.1 * n) + (0.01 * t) - (0.2 * c));
            for (int k = 0; k < expected.Length; k++)
            {
                expected[k] += (float)((a(last) * s_lowPattern[k]) + (forecast * s_highPattern[k]));
            }

            double scale = MaxAbs(expected), worst = 0;
            for (int k = 0; k < expected.Length; k++)
            {
                worst = Math.Max(worst, Math.Abs(output[n][k] - expected[k]));
            }

            Assert.True(worst <= 1e-5 * scale, $"step {n}: max error {worst:E2} of {scale:E2}");
        }
    }

    [Theory]
    [InlineData(50, 4, 2, 14)]
    [InlineData(50, 3, 2, 18)]
    [InlineData(50, 5, 2, 11)]
    [InlineData(20, 1, 2, 20)]
    [InlineData(20, 3, 4, 9)]
    public void TheStackRunsOnTaylorSeersScheduleOnly(int steps, int interval, int warmup, int fullSteps)
    {
        // Counts of docs/methods.md §4.1 (50 steps: 18 full at N = 3, 14 at N = 4, 11 at N = 5); warm-up 4, N = 3 over 20
        // steps: 0 1 2 3, then 6 9 12 15 18.
        ICachePolicy policy = new FreqCaOptions(interval, 2, warmup).Build(Run(steps));
        (bool[] ran, _) = Drive(policy, steps, n => n, n => 1);
        Assert.Equal(fullSteps, ran.Count(r => r));
        Assert.Equal(TaylorSeerOptions.Schedule(steps, interval, warmup), ran);
    }

    [Fact]
    public void StepsMustRunInOrderAndANewImageStartsClean()
    {
        ICachePolicy policy = new FreqCaOptions(3).Build(Run(10));
        Assert.Throws<InvalidOperationException>(() => policy.SkipBlocks(0, new float[Rows * Side * Side * Hidden]));
        (_, float[][] first) = Drive(policy, 10, n => n, n => 2 - n);
        (_, float[][] second) = Drive(policy, 10, n => n, n => 2 - n);   // BeginStep(0) again: a new image
        Assert.Equal(first.SelectMany(o => o), second.SelectMany(o => o));
        Assert.Throws<InvalidOperationException>(() => policy.BeginStep(5, 0));
    }

    [Fact]
    public void CacheBytesAreDepthIndependentAndFarBelowTaylorSeers()
    {
        // DiT-S/2 and DiT-XL/2 at 256² (16 × 16 tokens), one image with CFG (2 rows), o = 2 for both methods.
        foreach ((string model, int depth, int hidden) in new[] { ("DiT-S/2", 12, 384), ("DiT-XL/2", 28, 1152) })
        {
            CacheRunInfo run = Run(50, depth, 16, hidden, 2);
            long feature = 2L * 256 * hidden * sizeof(float);
            long freqca = new FreqCaOptions().Build(run).CacheBytes;
            long taylor = new TaylorSeerOptions(4, 2).Build(run).CacheBytes;
            _output.WriteLine($"{model}: freqca {freqca:N0} bytes ({freqca / feature} tensors), taylorseer o=2 {taylor:N0} bytes ({taylor / feature} tensors), {100.0 * (1 - ((double)freqca / taylor)):0.0}% less");
            Assert.Equal((2 + 4) * feature, freqca);                          // (O + 4) tensors: O + 2 stored, input, CRF
            Assert.Equal(2L * depth * 3 * feature, taylor);                   // 2 sites per block, O + 1 factors each
            Assert.Equal(freqca, new FreqCaOptions().Build(Run(50, 1, 16, hidden, 2)).CacheBytes);
        }
    }

    [Theory]
    [InlineData("freqca:n=0", "n=0")]
    [InlineData("freqca:o=9", "o=9")]
    [InlineData("freqca:o=-1", "o=-1")]
    [InlineData("freqca:warmup=0", "warmup=0")]
    [InlineData("freqca:sigma=0", "sigma=0")]
    [InlineData("freqca:sigma=5", "sigma=5")]
    [InlineData("freqca:cutoff=0", "cutoff=0")]
    [InlineData("freqca:cutoff=1.5", "cutoff=1.5")]
    [InlineData("freqca:cutoff=-0.1", "cutoff=-0.1")]
    [InlineData("freqca:radius=0.3", "radius")]
    public void BadKnobsAreUsageErrorsNamingTheKnob(string spec, string knob)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(knob, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void DefaultsRoundTripAndANonSquareGridIsRefused()
    {
        Assert.Equal(new FreqCaOptions(4, 2, 2, 0.5, 0.25), CacheRegistry.Parse("freqca"));
        var options = (FreqCaOptions)CacheRegistry.Parse("freqca:n=5,o=3,warmup=3,sigma=0.75,cutoff=0.4");
        Assert.Equal(options, CacheRegistry.Parse(options.Spec));
        Assert.Equal("FreqCa", CacheRegistry.DisplayName("freqca"));
        var e = Assert.Throws<DitCacheException>(() => options.Build(new CacheRunInfo(10, new float[10], 1, 37, 1, 2)));
        Assert.Contains("37 tokens", e.Message);
    }
}
