using System;
using System.Linq;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>
/// The Newton basis (docs/methods.md §4.4) against Lagrange interpolation in float64, a formula it shares no code
/// with: through m + 1 points the polynomial of degree m is unique, so both must give the same extrapolation.
/// </summary>
public class NewtonForecasterTests
{
    private const int Length = 37;   // odd: the vector tail runs

    [Theory]
    [InlineData(new[] { 0, 1, 6, 11 }, 2)]
    [InlineData(new[] { 0, 1, 6, 11, 16 }, 4)]
    [InlineData(new[] { 0, 2, 3, 9 }, 3)]
    [InlineData(new[] { 3, 4, 12 }, 1)]
    public void ExactOnPolynomialsOfItsOrderAtUnevenFullSteps(int[] fullSteps, int order)
    {
        double[] a = [0.4, -0.3, 0.07, -0.004, 0.0002];
        double P(double n, int i)
        {
            double sum = 0, power = 1;
            for (int j = 0; j <= order; j++)
            {
                sum += a[j] * (1 + (0.01 * i)) * power;
                power *= n;
            }

            return sum;
        }

        (float[] stack, double[] nodes, int count) = Fit(fullSteps, order + 1, P);
        Assert.Equal(Math.Min(fullSteps.Length, order + 1), count);
        int last = fullSteps[^1];
        foreach (int x in new[] { 1, 2, 4, 5 })
        {
            float[] forecast = Forecast(stack, nodes, count, last + x);
            for (int i = 0; i < Length; i++)
            {
                double expected = P(last + x, i);
                Assert.True(Math.Abs(forecast[i] - expected) <= 2e-4 * (1 + Math.Abs(expected)), $"x={x}, i={i}: {forecast[i]} vs {expected}");
            }
        }
    }

    [Fact]
    public void EqualsLagrangeExtrapolationThroughTheLastPointsOnAnyFeature()
    {
        // A feature that is no polynomial: the Newton forecast must still equal the degree-m Lagrange polynomial
        // through the last m + 1 full steps (the older ones dropped), here m = 2 through ordinals 6, 11, 16.
        int[] fullSteps = [0, 1, 6, 11, 16];
        static double F(double n, int i) => Math.Sin((0.13 * n) + (0.2 * i)) * Math.Exp(-0.02 * n);
        (float[] stack, double[] nodes, int count) = Fit(fullSteps, 3, F);
        Assert.Equal([16.0, 11, 6], nodes);
        foreach (int n in new[] { 17, 19, 20 })
        {
            float[] forecast = Forecast(stack, nodes, count, n);
            for (int i = 0; i < Length; i++)
            {
                double expected = Lagrange([6, 11, 16], s => F(s, i), n);
                Assert.True(Math.Abs(forecast[i] - expected) <= 1e-5, $"n={n}, i={i}: {forecast[i]} vs {expected}");
            }
        }
    }

    [Fact]
    public void TaylorFactorsMissTheQuadraticAfterTheWarmupGapAndNewtonDoesNot()
    {
        // The default schedule's gaps (1, then 5) on p(n) = n²: the official latest-gap differences are d = (36,
        // (36 − 1)/5 = 7, (7 − 1)/5 = 1.2), so the forecast of n = 7 is 36 + 7 + 1.2/2 = 43.6 (true 49); Newton gives 49.
        int[] fullSteps = [0, 1, 6];
        (float[] stack, double[] nodes, int count) = Fit(fullSteps, 3, (n, _) => n * n);
        Assert.Equal(49.0, Forecast(stack, nodes, count, 7)[0], 4);

        var taylor = new float[3 * Length];
        int held = 0, previous = 0;
        foreach (int s in fullSteps)
        {
            held = TaylorForecaster.UpdateFactors(taylor, Length, held, 3, Enumerable.Repeat((float)(s * s), Length).ToArray(), s - previous);
            previous = s;
        }

        var w = new double[3];
        TaylorForecaster.Weights(1, w);
        var result = new float[Length];
        WeightedSum.Combine(taylor, Length, w, result);
        Assert.Equal(43.6, result[0], 4);
    }

    [Fact]
    public void WeightsAreProductsOfDistancesToTheNodes()
    {
        var w = new double[4];
        NewtonForecaster.Weights(10, [8, 5, 1], w);
        Assert.Equal([1.0, 2.0, 2.0 * 5, 2.0 * 5 * 9], w);
        Assert.Throws<ArgumentException>(() => NewtonForecaster.Weights(10, [8], w));
    }

    [Fact]
    public void RefusesAStepThatDoesNotFollowTheNodes()
    {
        var stack = new float[2 * Length];
        var nodes = new double[2];
        var feature = new float[Length];
        int count = NewtonForecaster.UpdateFactors(stack, Length, 0, 2, feature, 5, nodes);
        Assert.Contains("does not follow", Assert.Throws<ArgumentException>(() => NewtonForecaster.UpdateFactors(stack, Length, count, 2, feature, 5, nodes)).Message);
    }

    [Fact]
    public void PolicyWithTheNewtonBasisForecastsAQuadraticPathExactly()
    {
        // Through the seam: taylorseer:n=5,o=2,basis=newton on features quadratic in the step, full steps 0, 1, 6, 11,
        // …; from step 7 on (three full steps held) every forecast equals the path.
        var options = (TaylorSeerOptions)CacheRegistry.Parse("taylorseer:n=5,o=2,basis=newton");
        Assert.True(options.Newton);
        Assert.Equal("taylorseer:n=5,o=2,warmup=2,basis=newton", options.Spec);
        static double Path(int n, FeatureSite site, int i) => 0.5 - (0.03 * n) + (0.002 * n * n * (1 + site.Index)) + (0.01 * i);
        (bool[] computed, float[][][] outputs) = SeamHarness.Drive(options.Build(SeamHarness.Run(20)), 20, Path);
        Assert.Equal(options.FullSteps(20), computed);
        for (int n = 7; n < 20; n++)
        {
            for (int k = 0; k < 2 * SeamHarness.Depth; k++)
            {
                var site = new FeatureSite(k / 2, (Site)(k % 2));
                for (int i = 0; i < SeamHarness.Length; i++)
                {
                    Assert.True(Math.Abs(outputs[n][k][i] - Path(n, site, i)) <= 1e-5, $"n={n}, site {site}, i={i}");
                }
            }
        }

        Assert.Contains("basis=spline", Assert.Throws<DitCacheException>(() => CacheRegistry.Parse("taylorseer:basis=spline")).Message);
    }

    private static (float[] Stack, double[] Nodes, int Count) Fit(int[] fullSteps, int factors, Func<double, int, double> feature)
    {
        var stack = new float[factors * Length];
        var nodes = new double[factors];
        int count = 0;
        var f = new float[Length];
        foreach (int s in fullSteps)
        {
            for (int i = 0; i < Length; i++)
            {
                f[i] = (float)feature(s, i);
            }

            count = NewtonForecaster.UpdateFactors(stack, Length, count, factors, f, s, nodes);
        }

        return (stack, nodes.Take(count).ToArray(), count);
    }

    private static float[] Forecast(float[] stack, double[] nodes, int count, int n)
    {
        var w = new double[count];
        NewtonForecaster.Weights(n, nodes, w);
        var result = new float[Length];
        WeightedSum.Combine(stack, Length, w, result);
        return result;
    }

    private static double Lagrange(int[] xs, Func<double, double> f, double x)
    {
        double sum = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            double term = f(xs[i]);
            for (int j = 0; j < xs.Length; j++)
            {
                if (j != i)
                {
                    term *= (x - xs[j]) / (xs[i] - xs[j]);
                }
            }

            sum += term;
        }

        return sum;
    }
}
