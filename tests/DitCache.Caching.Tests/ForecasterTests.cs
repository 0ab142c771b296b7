using System;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>The span math of the forecasters, against naive float64 references and closed forms.</summary>
public class ForecasterTests
{
    [Fact]
    public void WeightedSumMatchesTheNaiveSumAtEveryLength()
    {
        var random = new Random(7);
        double[][] weightSets = [[], [0.5], [1.5, -0.5, 0.0, 0.5], [1, 2, 0.5, -1.0 / 6, 1.0 / 24], [0, 0, 0]];
        for (int length = 0; length <= 70; length++)
        {
            foreach (double[] weights in weightSets)
            {
                var stack = new float[weights.Length * length];
                for (int i = 0; i < stack.Length; i++)
                {
                    stack[i] = (float)((random.NextDouble() * 4) - 2);
                }

                var dst = new float[length + 3];
                dst.AsSpan().Fill(99f);
                WeightedSum.Combine(stack, length, weights, dst);
                for (int i = 0; i < length; i++)
                {
                    double expected = 0;
                    for (int k = 0; k < weights.Length; k++)
                    {
                        expected += weights[k] * stack[(k * length) + i];
                    }

                    Assert.True(Math.Abs(dst[i] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"length {length}, i {i}: {dst[i]} vs {expected}");
                }

                Assert.Equal([99f, 99f, 99f], dst[length..]);   // no tail overrun
            }
        }
    }

    [Fact]
    public void WeightedSumRefusesAShortStack()
    {
        Assert.Throws<ArgumentException>(() => WeightedSum.Combine(new float[5], 3, [1.0, 1.0], new float[3]));
        Assert.Throws<ArgumentException>(() => WeightedSum.Combine(new float[6], 3, [1.0, 1.0], new float[2]));
    }

    [Fact]
    public void TaylorWeightsArePowersOverFactorials()
    {
        var w = new double[5];
        TaylorForecaster.Weights(3.0, w);
        Assert.Equal([1, 3, 4.5, 4.5, 81.0 / 24], w);
    }

    /// <summary>Samples p at full steps s_0 &lt; s_1 &lt; …, updates the factors, forecasts p(s_last + x).</summary>
    private static (float[] Factors, int Count) Fit(Func<double, double> p, int[] fullSteps, int maxFactors)
    {
        var stack = new float[maxFactors];
        int count = 0;
        for (int k = 0; k < fullSteps.Length; k++)
        {
            double gap = k == 0 ? 0 : fullSteps[k] - fullSteps[k - 1];
            count = TaylorForecaster.UpdateFactors(stack, 1, count, maxFactors, [(float)p(fullSteps[k])], gap);
        }

        return (stack, count);
    }

    private static double Forecast(float[] factors, int count, double x)
    {
        var w = new double[count];
        TaylorForecaster.Weights(x, w);
        var output = new float[1];
        WeightedSum.Combine(factors, 1, w, output);
        return output[0];
    }

    [Theory]
    [InlineData(0.5, 1.0)]
    [InlineData(0.75, 3.0)]
    [InlineData(0.6, -2.0)]
    [InlineData(1.0, 0.0)]
    public void HermiteWeightsAreScaledHermitePolynomialsOverFactorials(double sigma, double x)
    {
        // Closed forms of the physicists' Hermite polynomials (not the recurrence the forecaster uses).
        double y = sigma * x;
        double[] h = [1, 2 * y, (4 * y * y) - 2, (8 * y * y * y) - (12 * y), (16 * Math.Pow(y, 4)) - (48 * y * y) + 12,
            (32 * Math.Pow(y, 5)) - (160 * Math.Pow(y, 3)) + (120 * y)];
        var w = new double[h.Length];
        HermiteForecaster.Weights(x, sigma, w);
        double factorial = 1;
        for (int k = 0; k < h.Length; k++)
        {
            factorial *= Math.Max(1, k);
            Assert.Equal(Math.Pow(sigma, k) * h[k] / factorial, w[k], 12);
        }
    }

    [Fact]
    public void HermiteAtScaleOneOverRootTwoIsExactOnLinearFeaturesAndCatchesAFlippedArgument()
    {
        // Order 1: w_1 = σ·H_1(σx) = 2σ²x, which is x at σ = 1/√2: the forecast of a linear feature is exact there, with
        // the factors of the official divided differences (gaps 1 then 4). A port that evaluates H_1 at −σx (a
        // descending step index against ascending differences) forecasts p(13) − 0.75·(−x) instead.
        double sigma = 1 / Math.Sqrt(2);
        Func<double, double> p = n => 3.0 - (0.75 * n);
        (float[] f, int count) = Fit(p, [0, 1, 5, 9, 13], 2);
        for (int x = 1; x <= 3; x++)
        {
            var w = new double[count];
            HermiteForecaster.Weights(x, sigma, w);
            var output = new float[1];
            WeightedSum.Combine(f, 1, w, output);
            Assert.Equal(p(13 + x), output[0], 5);
            HermiteForecaster.Weights(-x, sigma, w);
            WeightedSum.Combine(f, 1, w, output);
            Assert.True(Math.Abs(output[0] - p(13 + x)) > 1, $"the flipped argument forecasts {output[0]} for {p(13 + x)}");
        }

        // Away from 1/√2 the slope is damped (σ = 0.5: half of it), the method's design, not a bug.
        var half = new double[2];
        HermiteForecaster.Weights(2, 0.5, half);
        Assert.Equal(1.0, half[1], 12);
    }

    [Theory]
    [InlineData(0.5, 0.3, 2.0)]
    [InlineData(0.75, -0.4, 3.0)]
    public void HermiteSeriesOfExponentialFactorsSumsToTheGeneratingFunction(double sigma, double lambda, double x)
    {
        // Factors d_k = λ^k (the derivatives of e^{λn} at the full step): Σ_k (σλ)^k H_k(σx)/k! = exp(2σ²λx − σ²λ²)
        // (the Hermite generating function), which the forecast approaches as the order grows: the closed form of what
        // the method extrapolates, e^{λx} only when 2σ² = 1 and up to the factor e^{−σ²λ²}.
        var w = new double[16];
        HermiteForecaster.Weights(x, sigma, w);
        double sum = 0;
        for (int k = 0; k < w.Length; k++)
        {
            sum += w[k] * Math.Pow(lambda, k);
        }

        Assert.Equal(Math.Exp((2 * sigma * sigma * lambda * x) - (sigma * sigma * lambda * lambda)), sum, 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => HermiteForecaster.Weights(1, 0, w));
        Assert.Throws<ArgumentOutOfRangeException>(() => HermiteForecaster.Weights(1, double.NaN, w));
    }

    [Fact]
    public void OrdersBuildUpOnePerFullStep()
    {
        Assert.Equal(1, Fit(n => n, [0], 3).Count);
        Assert.Equal(2, Fit(n => n, [0, 1], 3).Count);
        Assert.Equal(3, Fit(n => n, [0, 1, 5, 9], 3).Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void TaylorIsExactOnLinearFeaturesWithTheOfficialGaps(int order)
    {
        // Full steps 0, 1, 5, 9, 13 (warm-up 2, N = 4): gaps 1 then 4; every order above 1 sees zero differences.
        Func<double, double> p = n => 3.0 - (0.75 * n);
        (float[] f, int count) = Fit(p, [0, 1, 5, 9, 13], order + 1);
        for (int x = 1; x <= 3; x++)
        {
            Assert.Equal(p(13 + x), Forecast(f, count, x), 5);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 3)]
    [InlineData(3, 4)]
    [InlineData(4, 2)]
    public void OrderKFactorsAreTheOfficialBackwardDifferencesAtUniformGaps(int k, int h)
    {
        // A degree-k polynomial sampled every h steps. The official recursion stores d_j = ∇^j p / h^j (backward
        // differences over the latest gap), so d_k = k!·a_k exactly and d_j for j < k is the difference quotient.
        double[] a = [0.3, -0.2, 0.05, 0.01, -0.002];
        double P(double n)
        {
            double sum = 0, power = 1;
            for (int j = 0; j <= k; j++)
            {
                sum += a[j] * power;
                power *= n;
            }

            return sum;
        }

        int[] steps = new int[k + 1];
        for (int s = 0; s <= k; s++)
        {
            steps[s] = 2 + (s * h);
        }

        (float[] f, int count) = Fit(P, steps, k + 1);
        Assert.Equal(k + 1, count);

        // Reference: backward differences in float64.
        var diffs = new double[k + 1];
        for (int s = 0; s <= k; s++)
        {
            diffs[s] = P(steps[s]);
        }

        double factorial = 1;
        for (int j = 0; j <= k; j++)
        {
            double expected = diffs[k] / Math.Pow(h, j);
            Assert.True(Math.Abs(f[j] - expected) <= 1e-4 * (1 + Math.Abs(expected)), $"d_{j}: {f[j]} vs {expected}");
            for (int s = k; s > j; s--)
            {
                diffs[s] -= diffs[s - 1];
            }

            factorial *= Math.Max(1, j);
        }

        Assert.Equal(factorial * a[k], f[k], 3);   // d_k = k!·a_k

        // The forecast is Σ_j d_j x^j / j! of those factors (checked at x = h / 2 and x = h − 1).
        foreach (double x in new[] { h / 2.0, h - 1.0 })
        {
            double expected = 0, term = 1;
            for (int j = 0; j <= k; j++)
            {
                expected += f[j] * term;
                term *= x / (j + 1);
            }

            Assert.Equal(expected, Forecast(f, count, x), 4);
        }
    }

    [Fact]
    public void OfficialDifferencesAreNotDerivativesAboveOrderOne()
    {
        // Documented quirk (docs/methods.md §10, item 4): p(n) = n² at 0, 1, 2 gives d = (4, 3, 2), so the order-2
        // forecast of p(3) is 4 + 3 + 2/2 = 8, not 9. TaylorSeer is exact only on features linear in n.
        (float[] f, int count) = Fit(n => n * n, [0, 1, 2], 3);
        Assert.Equal([4f, 3f, 2f], f);
        Assert.Equal(8.0, Forecast(f, count, 1), 6);
    }

    [Fact]
    public void FocaWeightsFollowSection24()
    {
        Assert.Equal((1.5, -0.5, 0.5), FocaForecaster.Weights(hasYp: true, hasDfull: true, corrector: true));
        Assert.Equal((2.0, -1.0, 0.0), FocaForecaster.Weights(hasYp: true, hasDfull: true, corrector: false));
        Assert.Equal((2.0, -1.0, 0.0), FocaForecaster.Weights(hasYp: true, hasDfull: false, corrector: true));
        Assert.Equal((1.0, 0.0, 1.0), FocaForecaster.Weights(hasYp: false, hasDfull: true, corrector: true));
        Assert.Equal((1.0, 0.0, 0.0), FocaForecaster.Weights(hasYp: false, hasDfull: false, corrector: true));

        // Heun = half the BDF2 prediction plus half the full-step Euler step (docs/methods.md §2.4 step 4), any h.
        (double y, double yp, double d) = FocaForecaster.Weights(true, true, true, h: 0.25);
        Assert.Equal((1.5, -0.5, 0.125), (y, yp, d));
    }

    [Theory]
    [InlineData(1.0, 1.0)]
    [InlineData(20.0, 0.5)]
    [InlineData(3.0, 2.5)]
    [InlineData(0.7, 1.3)]
    public void VariableStepFocaIsExactOnLinearFeatures(double h, double omega)
    {
        // F(s) = a + b·s sampled at s = −h/ω (Yp), 0 (Y); the forecast point is s = h. Dfull = b.
        const double A = 0.8, B = -1.7;
        double yp = A - (B * h / omega), y = A, target = A + (B * h);
        foreach (bool corrector in new[] { true, false })
        {
            (double wy, double wyp, double wd) = FocaForecaster.Weights(true, true, corrector, h, omega);
            Assert.Equal(target, (wy * y) + (wyp * yp) + (wd * B), 12);
        }

        (double y1, double yp1, double d1) = FocaForecaster.Weights(false, true, true, h, omega);
        Assert.Equal(target, (y1 * y) + (yp1 * yp) + (d1 * B), 12);
    }

    [Fact]
    public void CacheDitWeightsFollowSection26()
    {
        // pred = Ffull + c·(Ffull − FfullPrev + Y − Yp), c = e/2 up to e = 3, then the clamp w = 3/e: 1.5·w.
        Assert.Equal((1.5, -0.5, 0.5, -0.5), FocaForecaster.CacheDitWeights(true, true, 1));
        Assert.Equal((2.5, -1.5, 1.5, -1.5), FocaForecaster.CacheDitWeights(true, true, 3));
        Assert.Equal((1 + 1.125, -1.125, 1.125, -1.125), FocaForecaster.CacheDitWeights(true, true, 4));
        Assert.Equal((1.0, 0.0, 0.0, 0.0), FocaForecaster.CacheDitWeights(false, true, 2));
        Assert.Equal((1.0, 0.0, 0.0, 0.0), FocaForecaster.CacheDitWeights(true, false, 2));
    }

    [Fact]
    public void FocaRecordFullStoresTheFeatureAndTheFullStepSlope()
    {
        // Into a separate slot, then in place over Ffull (the slot the policy prefers), at lengths that cover the
        // vector bodies and the scalar tails.
        var random = new Random(3);
        foreach (int length in new[] { 0, 1, 3, 15, 16, 17, 33, 70 })
        {
            float[] f = Draw(random, length), full = Draw(random, length);
            float[] originalFull = [.. full];

            float[] into = new float[length], d = new float[length];
            FocaForecaster.RecordFull(f, full, d, into, hasFull: true, gap: 3);
            Assert.Equal(f, into);
            AssertSlope(f, originalFull, d);
            float[] first = [.. d];

            d.AsSpan().Clear();
            FocaForecaster.RecordFull(f, full, d, full, hasFull: true, gap: 3);
            Assert.Equal(f, full);
            Assert.Equal(first, d);                                                // in place gives the same slope
        }

        float[] y = new float[3], keep = [1f, 0f, -1f];
        FocaForecaster.RecordFull([5f, 5f, 5f], default, keep, y, hasFull: false, gap: 0);
        Assert.Equal([5f, 5f, 5f], y);
        Assert.Equal([1f, 0f, -1f], keep);
        Assert.Throws<ArgumentException>(() => FocaForecaster.RecordFull([4f, 1f, -2f], new float[3], new float[3], y, hasFull: true, gap: 0));
        Assert.Throws<ArgumentException>(() => FocaForecaster.RecordFull([4f, 1f, -2f], new float[2], new float[3], y, hasFull: true, gap: 1));
    }

    [Fact]
    public void FocaRecordFullSlopeOnHandValues()
    {
        // (F − Ffull) / gap with gap 3: (7 − 1)/3 = 2, (1 − 4)/3 = −1, (−2 − (−2))/3 = 0.
        float[] d = new float[3], into = new float[3];
        FocaForecaster.RecordFull([7f, 1f, -2f], [1f, 4f, -2f], d, into, hasFull: true, gap: 3);
        Assert.Equal([2f, -1f, 0f], d);
        Assert.Equal([7f, 1f, -2f], into);
    }

    /// <summary>d = (f − full)/3 against the same quotient in float64: within 3 float32 ulps.</summary>
    private static void AssertSlope(float[] f, float[] full, float[] d)
    {
        for (int i = 0; i < f.Length; i++)
        {
            double expected = ((double)f[i] - full[i]) / 3.0;
            Assert.True(Math.Abs(d[i] - expected) <= 3 * Math.Pow(2, -24) * Math.Max(Math.Abs(expected), 1e-30) + 1e-30,
                $"d[{i}] = {d[i]:R}, (f − full)/3 = {expected:R}");
        }
    }

    [Fact]
    public void CombineTermsMatchesCombineBitForBitAndFillsTheCopy()
    {
        // The fused four-term pass against the stack form (the oracle the policies used before), for every subset of
        // nonzero weights, with the copy separate and aliasing the second term.
        var random = new Random(11);
        double[] w = [1.5, -0.5, 0.25, 0.5];
        foreach (int length in new[] { 0, 1, 7, 16, 31, 48, 70 })
        {
            float[] stack = Draw(random, 4 * length);
            for (int mask = 0; mask < 16; mask++)
            {
                double[] weights = new double[4];
                for (int k = 0; k < 4; k++)
                {
                    weights[k] = (mask & (1 << k)) != 0 ? w[k] : 0.0;
                }

                float[] expected = new float[length];
                WeightedSum.Combine(stack, length, weights, expected);
                float[] dst = new float[length + 2], copy = new float[length];
                dst.AsSpan().Fill(99f);
                WeightedSum.CombineTerms(length, stack.AsSpan(0, length), weights[0], stack.AsSpan(length, length), weights[1],
                    stack.AsSpan(2 * length, length), weights[2], stack.AsSpan(3 * length, length), weights[3], dst, copy);
                Assert.Equal(expected, dst[..length]);
                Assert.Equal(expected, copy);
                Assert.Equal([99f, 99f], dst[length..]);

                float[] aliased = (float[])stack.Clone();
                WeightedSum.CombineTerms(length, aliased.AsSpan(0, length), weights[0], aliased.AsSpan(length, length), weights[1],
                    aliased.AsSpan(2 * length, length), weights[2], aliased.AsSpan(3 * length, length), weights[3], dst,
                    aliased.AsSpan(length, length));
                Assert.Equal(expected, aliased[length..(2 * length)]);
            }
        }

        Assert.Throws<ArgumentException>(() => WeightedSum.CombineTerms(3, new float[2], 1.0, default, 0, default, 0, default, 0, new float[3], default));
    }

    private static float[] Draw(Random random, int length)
    {
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)((random.NextDouble() * 4) - 2);
        }

        return x;
    }
}
