using System;
using System.Numerics;
using System.Runtime.InteropServices;

namespace DitCache.Evaluation.Metrics;

/// <summary>Mean and covariance of a set of feature vectors, in double precision.</summary>
/// <param name="Mean">μ, length <paramref name="Dim"/>.</param>
/// <param name="Covariance">Σ, <paramref name="Dim"/>×<paramref name="Dim"/> row-major, unbiased (divides by count − 1, as numpy.cov).</param>
/// <param name="Dim">Feature length.</param>
/// <param name="Count">Number of vectors the statistics summarise.</param>
public sealed record FeatureStatistics(double[] Mean, double[] Covariance, int Dim, int Count)
{
    /// <summary>
    /// Statistics of <paramref name="count"/> vectors of length <paramref name="dim"/> stored row-major in
    /// <paramref name="features"/>. Two passes (mean, then centred products), accumulated in double.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 2 vectors, a length mismatch, or a non-finite feature.</exception>
    public static FeatureStatistics FromFeatures(ReadOnlySpan<float> features, int count, int dim)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        if (count < 2)
        {
            throw new ArgumentException($"a covariance needs at least 2 feature vectors but got {count}", nameof(count));
        }

        if (features.Length != (long)count * dim)
        {
            throw new ArgumentException(
                $"features hold {features.Length} floats but {count} vectors of length {dim} need {(long)count * dim}", nameof(features));
        }

        double[] mean = new double[dim];
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<float> row = features.Slice(i * dim, dim);
            for (int j = 0; j < dim; j++)
            {
                if (!float.IsFinite(row[j]))
                {
                    throw new ArgumentException($"feature vector {i} holds a non-finite value ({row[j]}) at {j}", nameof(features));
                }

                mean[j] += row[j];
            }
        }

        for (int j = 0; j < dim; j++)
        {
            mean[j] /= count;
        }

        double[] cov = new double[dim * dim];
        double[] centred = new double[dim];
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<float> row = features.Slice(i * dim, dim);
            for (int j = 0; j < dim; j++)
            {
                centred[j] = row[j] - mean[j];
            }

            // Upper triangle only; mirrored below.
            for (int r = 0; r < dim; r++)
            {
                double cr = centred[r];
                if (cr == 0)
                {
                    continue;   // dead ReLU units are common: skip their whole row
                }

                OuterRow.Add(cov.AsSpan((r * dim) + r, dim - r), cr, centred.AsSpan(r));
            }
        }

        for (int r = 0; r < dim; r++)
        {
            for (int c = r; c < dim; c++)
            {
                double v = cov[(r * dim) + c] / (count - 1);
                cov[(r * dim) + c] = v;
                cov[(c * dim) + r] = v;
            }
        }

        return new FeatureStatistics(mean, cov, dim, count);
    }
}

/// <summary>One row of a sum of outer products, vectorised: <c>row[c] += a·x[c]</c>, a product then a sum per element
/// (no fused multiply-add), so the result is bit for bit that of the scalar loop.</summary>
internal static class OuterRow
{
    public static void Add(Span<double> row, double a, ReadOnlySpan<double> x)
    {
        int n = row.Length, c = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = new Vector<double>(a);
            Span<Vector<double>> rows = MemoryMarshal.Cast<double, Vector<double>>(row);
            ReadOnlySpan<Vector<double>> xs = MemoryMarshal.Cast<double, Vector<double>>(x[..n]);
            for (int v = 0; v < rows.Length; v++)
            {
                rows[v] += va * xs[v];
            }

            c = rows.Length * Vector<double>.Count;
        }

        for (; c < n; c++)
        {
            row[c] += a * x[c];
        }
    }
}
