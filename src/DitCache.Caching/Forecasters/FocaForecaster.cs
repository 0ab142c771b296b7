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
    /// ablation (emit P). <paramref name="h"/> is the step in sampling steps (1 in FoCa-A).
    /// </summary>
    public static (double Y, double Yp, double Dfull) Weights(bool hasYp, bool hasDfull, bool corrector, double h = 1.0)
    {
        if (hasYp && hasDfull && corrector)
        {
            // C = Y + h/2·(Dfull + (Y − Yp)/h)
            return (1.5, -0.5, h / 2);
        }

        if (hasYp)
        {
            // P = 4/3·Y − 1/3·Yp + 2h/3·(Y − Yp)/h
            return ((4.0 / 3.0) + (2.0 / 3.0), (-1.0 / 3.0) - (2.0 / 3.0), 0.0);
        }

        return hasDfull ? (1.0, 0.0, h) : (1.0, 0.0, 0.0);
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
