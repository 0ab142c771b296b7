using System;

namespace DitCache.Caching;

/// <summary>What a token-wise cache (ToCa, DuCa) does at one sampling step.</summary>
public enum TokenStep
{
    /// <summary>A partial step: attention reused, the MLP recomputed on the fresh tokens only (ToCa's "ToCa" type).</summary>
    Partial,

    /// <summary>Every block runs; attention scores, module outputs and staleness counters are refreshed.</summary>
    Full,

    /// <summary>DuCa's aggressive step: every block is skipped and the stored block-stack output stands in.</summary>
    Aggressive,
}

/// <summary>The fresh-ratio scheduler of ToCa (official <c>fresh_ratio_scheduler.py</c>, knob <c>sched</c>).</summary>
public enum TokenRatioSchedule
{
    /// <summary><c>ToCa-ddim50</c> (DuCa's <c>ToCa</c>): step weight 2.0, layer weight −0.2, MLP module factor 2.5.</summary>
    Ddim50,

    /// <summary><c>ToCa-ddpm250</c>: step weight 0.4, layer weight 0.8, MLP module factor 2.5.</summary>
    Ddpm250,

    /// <summary><c>constant</c>: the fresh ratio as given, at every step and layer.</summary>
    Constant,
}

/// <summary>
/// The span math shared by ToCa and DuCa (docs/methods.md §5.2 and 5.3): the step-type schedule, the fresh ratio,
/// the token score and a deterministic top-k. Pure functions over spans, unit-tested without a model.
/// </summary>
/// <remarks>
/// Index conventions: <c>i = S − 1 − n</c> is the descending respaced index the official code calls <c>step</c>;
/// tokens are the DiT patch grid in row-major order, token = row·side + column.
/// </remarks>
public static class TokenScore
{
    /// <summary>ToCa's MLP module factor <c>1 + module_time_weight·module_weight = 1 + 0.6·2.5</c>.</summary>
    public const double MlpModuleFactor = 1 + (0.6 * 2.5);

    /// <summary>
    /// The force-activation cycle <c>cal_threshold</c> set at a full step with respaced index <paramref name="i"/>
    /// (official <c>force_scheduler.py</c>): <c>round(N / (1 + 0.4 − 0.8·i/S))</c>, round half to even, forced to 2
    /// for <c>i ∈ [⌊0.2S⌋, ⌊0.4S⌋)</c> (the official DDPM-250 code hard-codes <c>range(50, 100)</c>; docs/methods.md §5.2
    /// writes it relative to S). Computed in float64 (the official code divides in float32: the two differ only when
    /// N/step_factor lands within float32 rounding of a half-integer).
    /// </summary>
    public static int CycleLength(int threshold, int i, int steps)
    {
        if (i >= (int)(0.2 * steps) && i < (int)(0.4 * steps))
        {
            return 2;
        }

        double stepFactor = 1 + 0.4 - (2 * 0.4 * i / steps);
        return (int)Math.Round(threshold / stepFactor, MidpointRounding.ToEven);
    }

    /// <summary>
    /// The step types for n = 0 … <paramref name="steps"/> − 1, decided once per step (<c>schedule=step</c>; the official
    /// <c>cal_type.py</c> decides per block: <see cref="TokenwiseSchedule"/>). The first step
    /// (i = S − 1) is full and checked against N itself; every full step then sets the cycle C with
    /// <see cref="CycleLength"/>. Later a step is full when <c>i mod C = 0</c>; otherwise ToCa makes it
    /// <see cref="TokenStep.Partial"/>, DuCa (<paramref name="aggressive"/>) makes it partial when <c>i mod C</c> is odd
    /// and <see cref="TokenStep.Aggressive"/> when it is even. DDIM-50, N = 3: 20 full steps.
    /// </summary>
    public static TokenStep[] Schedule(int steps, int threshold, bool aggressive)
    {
        var types = new TokenStep[steps];
        int cycle = threshold;
        for (int n = 0; n < steps; n++)
        {
            int i = steps - 1 - n;
            int phase = i % cycle;
            if (n == 0 || phase == 0)
            {
                types[n] = TokenStep.Full;
                cycle = CycleLength(threshold, i, steps);
            }
            else
            {
                types[n] = aggressive && phase % 2 == 0 ? TokenStep.Aggressive : TokenStep.Partial;
            }
        }

        return types;
    }

    /// <summary>
    /// The fresh ratio of the MLP of block <paramref name="layer"/> at respaced index <paramref name="i"/>, clamped to
    /// [0, 1]: <c>ratio · layer_factor · step_factor · module_factor</c> with <c>step_factor = 1 + s − 2s·i/S</c>,
    /// <c>layer_factor = 1 + w − 2w·l/(depth − 1)</c>, module factor 2.5 (weights s, w by <paramref name="schedule"/>).
    /// The official code divides by 27 (DiT-XL, depth 28); we divide by depth − 1 (1 when depth is 1) so the factor
    /// spans the same range on any depth, identical on DiT-XL. Float64, in the official order of operations.
    /// </summary>
    public static double FreshRatio(double ratio, TokenRatioSchedule schedule, int i, int steps, int layer, int depth)
    {
        if (schedule == TokenRatioSchedule.Constant)
        {
            return Math.Clamp(ratio, 0, 1);
        }

        (double stepWeight, double layerWeight) = schedule == TokenRatioSchedule.Ddim50 ? (2.0, -0.2) : (0.4, 0.8);
        double stepFactor = 1 + stepWeight - (2 * stepWeight * i / steps);
        double layerFactor = 1 + layerWeight - (2 * layerWeight * layer / Math.Max(depth - 1, 1));
        return Math.Clamp(ratio * layerFactor * stepFactor * MlpModuleFactor, 0, 1);
    }

    /// <summary>Tokens per image recomputed at a fresh ratio: <c>⌊ratio·T⌋</c> (the official <c>int(fresh_ratio·N)</c>).</summary>
    public static int FreshCount(double ratio, int tokens) => Math.Clamp((int)Math.Floor(ratio * tokens), 0, tokens);

    /// <summary>
    /// s1: the attention each token received, L2-normalised over the tokens of each image row (official
    /// <c>F.normalize(attn_map.sum(dim=1), dim=1)</c>, eps 1e-12). <paramref name="received"/> and
    /// <paramref name="destination"/> are (B, T).
    /// </summary>
    public static void NormalizeRows(ReadOnlySpan<float> received, int tokens, Span<double> destination)
    {
        for (int row = 0; row < received.Length / tokens; row++)
        {
            ReadOnlySpan<float> r = received.Slice(row * tokens, tokens);
            double sum = 0;
            for (int k = 0; k < tokens; k++)
            {
                sum += (double)r[k] * r[k];
            }

            double norm = Math.Max(Math.Sqrt(sum), 1e-12);
            for (int k = 0; k < tokens; k++)
            {
                destination[(row * tokens) + k] = r[k] / norm;
            }
        }
    }

    /// <summary>
    /// The <c>kv-norm</c> base score (official <c>kv_norm_score</c>): per image row,
    /// <c>s[t] = Σ_h (1 − ‖v[h, t]‖₂)</c> over the heads, L2-normalised over the tokens of the row
    /// (<c>F.normalize(..., p=2)</c>, eps 1e-12). <paramref name="norms"/> is (B, H, T), <paramref name="destination"/>
    /// (B, T); float64 from the float32 norms.
    /// </summary>
    public static void KvNormRows(ReadOnlySpan<float> norms, int heads, int tokens, Span<double> destination)
    {
        int rows = norms.Length / (heads * tokens);
        for (int row = 0; row < rows; row++)
        {
            Span<double> s = destination.Slice(row * tokens, tokens);
            s.Clear();
            for (int h = 0; h < heads; h++)
            {
                ReadOnlySpan<float> n = norms.Slice(((row * heads) + h) * tokens, tokens);
                for (int t = 0; t < tokens; t++)
                {
                    s[t] += 1.0 - n[t];
                }
            }

            double sum = 0;
            for (int t = 0; t < tokens; t++)
            {
                sum += s[t] * s[t];
            }

            double norm = Math.Max(Math.Sqrt(sum), 1e-12);
            for (int t = 0; t < tokens; t++)
            {
                s[t] /= norm;
            }
        }
    }

    /// <summary>
    /// The score of one image row, into <paramref name="score"/> (T): s1 plus the staleness term
    /// <c>weight · stale / threshold</c> (s3), then the spatial bonus (s4): in each 2×2 cell of the
    /// <paramref name="side"/>×<paramref name="side"/> token grid the highest-scoring token (the lowest index among
    /// equals) gains <c>bonus · its score</c>. An odd side leaves 1×2, 2×1 or 1×1 cells on the last row and column.
    /// </summary>
    public static void Score(ReadOnlySpan<double> s1, ReadOnlySpan<int> stale, double weight, int threshold, double bonus,
        int side, Span<double> score)
    {
        int tokens = s1.Length;
        for (int k = 0; k < tokens; k++)
        {
            score[k] = s1[k] + (weight * ((double)stale[k] / threshold));
        }

        if (bonus == 0)
        {
            return;
        }

        for (int r0 = 0; r0 < side; r0 += 2)
        {
            for (int c0 = 0; c0 < side; c0 += 2)
            {
                int best = (r0 * side) + c0;
                for (int r = r0; r < Math.Min(r0 + 2, side); r++)
                {
                    for (int c = c0; c < Math.Min(c0 + 2, side); c++)
                    {
                        int token = (r * side) + c;
                        if (score[token] > score[best])
                        {
                            best = token;
                        }
                    }
                }

                score[best] += bonus * score[best];
            }
        }
    }

    /// <summary>
    /// The <paramref name="k"/> highest scores' token indices into <paramref name="top"/>, highest first, ties broken
    /// by the lower token index. <paramref name="keys"/> and <paramref name="order"/> are T-long scratch.
    /// </summary>
    public static void TopK(ReadOnlySpan<double> score, int k, Span<double> keys, Span<int> order, Span<int> top)
    {
        int tokens = score.Length;
        for (int t = 0; t < tokens; t++)
        {
            keys[t] = -score[t];
            order[t] = t;
        }

        keys[..tokens].Sort(order[..tokens]);                   // ascending −score; unstable, so ties are fixed below
        for (int start = 0; start < tokens;)
        {
            int end = start + 1;
            while (end < tokens && keys[end] == keys[start])
            {
                end++;
            }

            if (end - start > 1)
            {
                order[start..end].Sort();                       // equal scores: lower token index first
            }

            start = end;
        }

        order[..k].CopyTo(top);
    }
}
