using System;
using System.Numerics;

namespace DitCache.Caching;

/// <summary>
/// FoCa-A's forecaster for one feature (METHODS.md section 2.4, derived from arXiv 2508.16211 Eqs. 6–8; no official
/// code exists). State: <c>Y</c> (value at n−1: true if that step was full, the corrected forecast if cached),
/// <c>Yp</c> (value at n−2), <c>Ffull</c> (last full value) and <c>Dfull</c> (derivative at the last full step).
/// With step <c>h</c> (one sampling step in FoCa-A):
/// <list type="bullet">
/// <item>local slope <c>Dloc = (Y − Yp)/h</c>;</item>
/// <item>BDF2 predictor (Eq. 7) <c>P = 4/3·Y − 1/3·Yp + 2h/3·Dloc = 2Y − Yp</c>;</item>
/// <item>the slope at P from Eq. 6 equals Dloc, so the Heun corrector (Eq. 8) is
/// <c>C = Y + h/2·(Dfull + Dloc) = 1.5·Y − 0.5·Yp + h/2·Dfull</c>.</item>
/// </list>
/// Fallbacks: no Yp → <c>Y + h·Dfull</c>; no Dfull → P (or Y without Yp either). The forecast is the
/// combination <see cref="Weights"/> of (Y, Yp, Dfull) evaluated by <see cref="WeightedSum.Combine"/>.
/// </summary>
public static class FocaForecaster
{
    /// <summary>Slots of the per-feature stack: two rolling values, the last full value and its derivative.</summary>
    public const int Slots = 4;

    /// <summary>Slot of the last fully computed value Ffull.</summary>
    public const int FullSlot = 2;

    /// <summary>Slot of the derivative at the last full step Dfull.</summary>
    public const int DerivativeSlot = 3;

    /// <summary>
    /// Weights (w_Y, w_Yp, w_Dfull) of the forecast, in float64. <paramref name="corrector"/> false is the BDF2-only
    /// ablation (emit P). <paramref name="h"/> is the step to the forecast point (1 sampling step in FoCa-A) and
    /// <paramref name="omega"/> = h / (previous step) the step ratio ω of the variable-step BDF2 (1 for a uniform grid).
    /// The variable-step predictor <c>[(1+ω)²Y − ω²Yp]/(1+2ω) + h(1+ω)/(1+2ω)·Dloc</c> with <c>Dloc = ω(Y − Yp)/h</c>
    /// reduces to <c>(1+ω)Y − ωYp</c>, and its variable-step BDF2 slope equals Dloc again, so
    /// <c>C = Y + h/2·(Dfull + Dloc) = (1 + ω/2)·Y − ω/2·Yp + h/2·Dfull</c>; at ω = h = 1 these are Eqs. 6–8.
    /// </summary>
    public static (double Y, double Yp, double Dfull) Weights(bool hasYp, bool hasDfull, bool corrector, double h = 1.0, double omega = 1.0)
    {
        if (hasYp && hasDfull && corrector)
        {
            // C = Y + h/2·(Dfull + ω(Y − Yp)/h)
            return (1 + (omega / 2), -omega / 2, h / 2);
        }

        if (hasYp)
        {
            // P = [(1+ω)²Y − ω²Yp + h(1+ω)·ω(Y − Yp)/h] / (1+2ω) = [(1+ω)(1+2ω)Y − ω(1+2ω)Yp] / (1+2ω)
            return (1 + omega, -omega, 0.0);
        }

        return hasDfull ? (1.0, 0.0, h) : (1.0, 0.0, 0.0);
    }

    /// <summary>
    /// The cache-dit reading ("FoCa-B", METHODS.md section 2.6; vipshop/cache-dit <c>calibrators/foca.py</c>), as
    /// weights (w_Ffull, w_FfullPrev, w_Y, w_Yp) with <paramref name="elapsed"/> e = steps since the last full step:
    /// <c>pred = Ffull + c·[(Ffull − FfullPrev) + (Y − Yp)]</c>, c = e/2 for e ≤ 3, else 4.5/e (its horizon clamp
    /// <c>w·(Ffull + 1.5·(…)) + (1 − w)·Ffull</c> with w = 3/e). The full-step difference is not divided by the gap,
    /// a quirk kept on purpose. Without FfullPrev or Yp: plain reuse of Ffull.
    /// </summary>
    public static (double Full, double FullPrev, double Y, double Yp) CacheDitWeights(bool hasFullPrev, bool hasYp, int elapsed)
    {
        if (!hasFullPrev || !hasYp)
        {
            return (1.0, 0.0, 0.0, 0.0);
        }

        double c = elapsed <= 3 ? elapsed / 2.0 : 4.5 / elapsed;
        return (1 + c, -c, c, -c);
    }

    /// <summary>
    /// A full step's bookkeeping in one pass: <c>Dfull ← (F − Ffull)/gap</c> when <paramref name="hasFull"/>, then
    /// <c>Ffull ← F</c> and <c>Y ← F</c> (<paramref name="y"/> is the slot that receives this step's value).
    /// </summary>
    /// <exception cref="ArgumentException">Spans of different lengths, or a non-positive gap.</exception>
    public static void RecordFull(ReadOnlySpan<float> feature, Span<float> y, Span<float> full, Span<float> derivative, bool hasFull, double gap)
    {
        int length = feature.Length;
        if (y.Length != length || full.Length != length || derivative.Length != length)
        {
            throw new ArgumentException($"FoCa record: feature {length}, Y {y.Length}, Ffull {full.Length}, Dfull {derivative.Length} floats differ");
        }

        if (hasFull && !(gap > 0))
        {
            throw new ArgumentException($"the gap between full steps must be positive, got {gap}", nameof(gap));
        }

        if (hasFull)
        {
            float inv = (float)(1.0 / gap);
            int i = 0;
            int width = Vector<float>.Count;
            if (Vector.IsHardwareAccelerated)
            {
                for (; i <= length - width; i += width)
                {
                    var f = new Vector<float>(feature.Slice(i, width));
                    ((f - new Vector<float>(full.Slice(i, width))) * inv).CopyTo(derivative.Slice(i, width));
                }
            }

            for (; i < length; i++)
            {
                derivative[i] = (feature[i] - full[i]) * inv;
            }
        }

        feature.CopyTo(full);
        feature.CopyTo(y);
    }
}
