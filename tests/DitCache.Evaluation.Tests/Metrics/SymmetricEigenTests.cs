using System;
using DitCache.Evaluation.Metrics;
using Xunit;

namespace DitCache.Evaluation.Tests.Metrics;

public sealed class SymmetricEigenTests
{
    [Fact]
    public void Two_by_two_closed_form()
    {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3 with eigenvectors (1, −1)/√2 and (1, 1)/√2.
        (double[] values, double[] v) = SymmetricEigen.Decompose([2, 1, 1, 2], 2);

        Assert.Equal(1, values[0], 14);
        Assert.Equal(3, values[1], 14);
        Assert.Equal(Math.Abs(v[0]), Math.Abs(v[2]), 14);   // column 0 ∝ (1, −1)
        Assert.Equal(-Math.Sign(v[0]), Math.Sign(v[2]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(37)]
    [InlineData(128)]
    public void Reconstructs_random_symmetric_matrices(int n)
    {
        var rng = new Random(n);
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double v = (rng.NextDouble() * 2) - 1;
                a[(i * n) + j] = v;
                a[(j * n) + i] = v;
            }
        }

        (double[] values, double[] vec) = SymmetricEigen.Decompose(a, n);

        double trace = 0;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            trace += a[(i * n) + i];
            sum += values[i];
            if (i > 0)
            {
                Assert.True(values[i - 1] <= values[i], "eigenvalues must be ascending");
            }
        }

        Assert.Equal(trace, sum, 10);
        double maxErr = 0;
        double maxOrth = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double r = 0;   // (V Λ Vᵀ)[i, j]
                double o = 0;   // (Vᵀ V)[i, j]
                for (int k = 0; k < n; k++)
                {
                    r += vec[(i * n) + k] * values[k] * vec[(j * n) + k];
                    o += vec[(k * n) + i] * vec[(k * n) + j];
                }

                maxErr = Math.Max(maxErr, Math.Abs(r - a[(i * n) + j]));
                maxOrth = Math.Max(maxOrth, Math.Abs(o - (i == j ? 1 : 0)));
            }
        }

        Assert.True(maxErr < 1e-12, $"reconstruction error {maxErr}");
        Assert.True(maxOrth < 1e-12, $"orthogonality error {maxOrth}");
    }

    [Fact]
    public void Rejects_non_symmetric_and_non_finite_input()
    {
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose([1, 2, 3, 4], 2));
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose([1, double.NaN, double.NaN, 4], 2));
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose([1, 2, 3], 2));
    }
}
