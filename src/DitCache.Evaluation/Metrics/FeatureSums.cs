using System;

namespace DitCache.Evaluation.Metrics;

/// <summary>
/// Summable statistics of a set of feature vectors: the count, the sum and the sum of outer products, all in float64.
/// Sums of disjoint sets add up to the sums of their union, so feature statistics computed on many machines merge
/// exactly (up to float64 round-off) into those of one run (docs/methods.md §9.3).
/// </summary>
/// <remarks>
/// From the sums, <c>μ = S / n</c> and <c>Σ = (Q − n μ μᵀ) / (n − 1)</c> (unbiased, as numpy.cov). The one-pass form
/// cancels where a feature's mean is large against its spread; for classifier features (ReLU outputs of order 1) the
/// float64 round-off stays near 1e-13 of the covariance, far below what the Frechet distance resolves.
/// </remarks>
public sealed class FeatureSums
{
    private readonly double[] _sum;
    private readonly double[] _outer;
    private readonly double[] _x;                                              // the vector being added, in float64

    /// <summary>Empty sums of vectors of length <paramref name="dim"/>.</summary>
    public FeatureSums(int dim)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dim, 1);
        Dim = dim;
        _sum = new double[dim];
        _outer = new double[dim * dim];
        _x = new double[dim];
    }

    /// <summary>Feature length.</summary>
    public int Dim { get; }

    /// <summary>Number of vectors added.</summary>
    public long Count { get; private set; }

    /// <summary>Σ xᵢ, length <see cref="Dim"/>.</summary>
    public ReadOnlySpan<double> Sum => _sum;

    /// <summary>Σ xᵢ xᵢᵀ, <see cref="Dim"/>×<see cref="Dim"/> row-major (upper triangle filled, mirrored by <see cref="ToStatistics"/>).</summary>
    public ReadOnlySpan<double> Outer => _outer;

    /// <summary>Adds one vector.</summary>
    /// <exception cref="ArgumentException">The length is not <see cref="Dim"/> or a value is not finite.</exception>
    public void Add(ReadOnlySpan<float> vector)
    {
        if (vector.Length != Dim)
        {
            throw new ArgumentException($"a feature vector of {vector.Length} values was added to sums of length {Dim}", nameof(vector));
        }

        for (int j = 0; j < Dim; j++)
        {
            if (!float.IsFinite(vector[j]))
            {
                throw new ArgumentException($"feature vector holds a non-finite value ({vector[j]}) at {j}", nameof(vector));
            }
        }

        for (int j = 0; j < Dim; j++)
        {
            _x[j] = vector[j];
        }

        for (int r = 0; r < Dim; r++)
        {
            double xr = _x[r];
            _sum[r] += xr;
            if (xr == 0)
            {
                continue;                                                      // dead ReLU units: nothing to add
            }

            OuterRow.Add(_outer.AsSpan((r * Dim) + r, Dim - r), xr, _x.AsSpan(r));
        }

        Count++;
    }

    /// <summary>Adds the sums of another, disjoint set of vectors.</summary>
    /// <exception cref="ArgumentException">The lengths differ.</exception>
    public void Add(FeatureSums other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Dim != Dim)
        {
            throw new ArgumentException($"sums of length {other.Dim} cannot be added to sums of length {Dim}", nameof(other));
        }

        for (int j = 0; j < _sum.Length; j++)
        {
            _sum[j] += other._sum[j];
        }

        for (int j = 0; j < _outer.Length; j++)
        {
            _outer[j] += other._outer[j];
        }

        Count += other.Count;
    }

    /// <summary>Mean and unbiased covariance of the vectors added.</summary>
    /// <exception cref="InvalidOperationException">Fewer than 2 vectors.</exception>
    public FeatureStatistics ToStatistics()
    {
        if (Count < 2)
        {
            throw new InvalidOperationException($"a covariance needs at least 2 feature vectors but the sums hold {Count}");
        }

        int d = Dim;
        double n = Count;
        double[] mean = new double[d];
        for (int j = 0; j < d; j++)
        {
            mean[j] = _sum[j] / n;
        }

        double[] cov = new double[d * d];
        for (int r = 0; r < d; r++)
        {
            for (int c = r; c < d; c++)
            {
                double v = (_outer[(r * d) + c] - (n * mean[r] * mean[c])) / (n - 1);
                cov[(r * d) + c] = v;
                cov[(c * d) + r] = v;
            }
        }

        return new FeatureStatistics(mean, cov, d, checked((int)Count));
    }
}
