using System;

namespace DitCache.Caching.Calibration;

/// <summary>
/// Least-squares polynomial fit in float64, as <c>np.polyfit(x, y, degree)</c>: coefficients highest degree first
/// (<c>np.poly1d</c> order). Solved by Householder QR on the Vandermonde matrix (never the normal equations, whose
/// condition number is the square of the matrix's).
/// </summary>
public static class PolyFit
{
    /// <summary>The degree-<paramref name="degree"/> polynomial minimising Σ (poly(x_i) − y_i)².</summary>
    /// <exception cref="ArgumentException">Lengths differ, fewer than degree + 1 points, or non-finite input.</exception>
    public static double[] Fit(ReadOnlySpan<double> x, ReadOnlySpan<double> y, int degree)
    {
        int m = x.Length, k = degree + 1;
        if (y.Length != m)
        {
            throw new ArgumentException($"x has {m} points, y has {y.Length}", nameof(y));
        }

        if (degree < 0 || m < k)
        {
            throw new ArgumentException($"a degree-{degree} fit needs at least {k} points, got {m}", nameof(x));
        }

        var a = new double[m, k];                                   // Vandermonde, column j = x^(degree − j)
        var b = new double[m];
        for (int i = 0; i < m; i++)
        {
            if (!double.IsFinite(x[i]) || !double.IsFinite(y[i]))
            {
                throw new ArgumentException($"point {i} ({x[i]}, {y[i]}) is not finite", nameof(x));
            }

            double p = 1;
            for (int j = k - 1; j >= 0; j--)
            {
                a[i, j] = p;
                p *= x[i];
            }

            b[i] = y[i];
        }

        // Householder QR: A = QR, applying Qᵀ to b as we go.
        for (int j = 0; j < k; j++)
        {
            double norm = 0;
            for (int i = j; i < m; i++)
            {
                norm += a[i, j] * a[i, j];
            }

            norm = Math.Sqrt(norm);
            if (norm == 0)
            {
                throw new ArgumentException($"the points do not determine a degree-{degree} polynomial (fewer than {k} distinct x)", nameof(x));
            }

            double alpha = a[j, j] > 0 ? -norm : norm;
            var v = new double[m - j];
            for (int i = j; i < m; i++)
            {
                v[i - j] = a[i, j];
            }

            v[0] -= alpha;
            double vv = 0;
            foreach (double e in v)
            {
                vv += e * e;
            }

            for (int col = j; col < k; col++)
            {
                ApplyReflector(v, vv, i => a[i, col], (i, val) => a[i, col] = val, j, m);
            }

            ApplyReflector(v, vv, i => b[i], (i, val) => b[i] = val, j, m);
        }

        var coef = new double[k];
        for (int j = k - 1; j >= 0; j--)
        {
            double s = b[j];
            for (int c = j + 1; c < k; c++)
            {
                s -= a[j, c] * coef[c];
            }

            if (Math.Abs(a[j, j]) < 1e-300)
            {
                throw new ArgumentException($"the points do not determine a degree-{degree} polynomial (fewer than {k} distinct x)", nameof(x));
            }

            coef[j] = s / a[j, j];
        }

        return coef;
    }

    /// <summary>poly(x) with coefficients highest degree first (Horner), as <c>np.poly1d(coefficients)(x)</c>.</summary>
    public static double Evaluate(ReadOnlySpan<double> coefficients, double x)
    {
        double s = 0;
        foreach (double c in coefficients)
        {
            s = (s * x) + c;
        }

        return s;
    }

    private static void ApplyReflector(double[] v, double vv, Func<int, double> get, Action<int, double> set, int j, int m)
    {
        if (vv == 0)
        {
            return;
        }

        double dot = 0;
        for (int i = j; i < m; i++)
        {
            dot += v[i - j] * get(i);
        }

        double f = 2 * dot / vv;
        for (int i = j; i < m; i++)
        {
            set(i, get(i) - (f * v[i - j]));
        }
    }
}
