using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Caching;

/// <summary>
/// FoCa-A's forecaster for one feature (docs/methods.md §2.4, derived from arXiv 2508.16211 Eqs. 6–8; no official
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
/// combination <see cref="Weights"/> of (Y, Yp, Dfull) evaluated by <see cref="WeightedSum.CombineTerms"/>, which
/// also stores it as the next step's Y in the same pass.
/// </summary>
public static class FocaForecaster
{
    /// <summary>
    /// Slots of the per-feature stack: room for Y, Yp, Ffull and Dfull (Y and Ffull share a slot right after a full
    /// step, so three values rotate through three slots).
    /// </summary>
    public const int Slots = 4;

    /// <summary>The slot that holds Dfull for the whole run; Y, Yp and Ffull rotate through the others.</summary>
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
    /// The cache-dit reading ("FoCa-B", docs/methods.md §2.6; vipshop/cache-dit <c>calibrators/foca.py</c>), as
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
    /// A full step's bookkeeping in one pass: <c>Dfull ← (F − Ffull)/gap</c> when <paramref name="hasFull"/>, and the
    /// new value F stored into <paramref name="destination"/>, which becomes both the new Ffull and the new Y (the
    /// policy points both roles at it instead of keeping two copies). <paramref name="destination"/> may be
    /// <paramref name="full"/> itself (each element is read before it is written); <paramref name="derivative"/> must
    /// not overlap the others. Without <paramref name="hasFull"/>, <paramref name="full"/> and
    /// <paramref name="derivative"/> are not touched and may be empty.
    /// </summary>
    /// <exception cref="ArgumentException">Spans of different lengths, or a non-positive gap.</exception>
    public static void RecordFull(ReadOnlySpan<float> feature, ReadOnlySpan<float> full, Span<float> derivative,
        Span<float> destination, bool hasFull, double gap)
    {
        int length = feature.Length;
        if (destination.Length != length || (hasFull && (full.Length != length || derivative.Length != length)))
        {
            throw new ArgumentException(
                $"FoCa record: feature {length}, Ffull {full.Length}, Dfull {derivative.Length}, destination {destination.Length} floats differ");
        }

        if (hasFull && !(gap > 0))
        {
            throw new ArgumentException($"the gap between full steps must be positive, got {gap}", nameof(gap));
        }

        if (!hasFull)
        {
            feature.CopyTo(destination);
            return;
        }

        float inv = (float)(1.0 / gap);
        ref float f = ref MemoryMarshal.GetReference(feature);
        ref float old = ref MemoryMarshal.GetReference(full);
        ref float d = ref MemoryMarshal.GetReference(derivative);
        ref float y = ref MemoryMarshal.GetReference(destination);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> v = Vector512.LoadUnsafe(ref f, (nuint)i);
                ((v - Vector512.LoadUnsafe(ref old, (nuint)i)) * inv).StoreUnsafe(ref d, (nuint)i);
                v.StoreUnsafe(ref y, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> v = Vector256.LoadUnsafe(ref f, (nuint)i);
                ((v - Vector256.LoadUnsafe(ref old, (nuint)i)) * inv).StoreUnsafe(ref d, (nuint)i);
                v.StoreUnsafe(ref y, (nuint)i);
            }
        }

        for (; i < length; i++)
        {
            float v = Unsafe.Add(ref f, i);
            Unsafe.Add(ref d, i) = (v - Unsafe.Add(ref old, i)) * inv;
            Unsafe.Add(ref y, i) = v;
        }
    }
}
