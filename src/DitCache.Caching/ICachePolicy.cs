using System;

namespace DitCache.Caching;

/// <summary>
/// The seam between the DiT and an accelerator. <c>DitModel.Forward</c> calls it at named points that a reader of
/// the forward pass sees (explicit seams, not hooks; CONTRIBUTING.md):
/// <list type="number">
/// <item><see cref="BeginStep"/> once per sampling step, by the denoising loop, before the model runs;</item>
/// <item><see cref="ObserveModulatedInput"/> before block 0, only for a policy that <see cref="WantsModulatedInput"/>
/// (TeaCache's indicator);</item>
/// <item><see cref="SkipBlocks"/> before every block reached (block level: Spectrum, TeaCache, MagCache, FreqCa and DuCa's
/// aggressive steps skip the whole stack from block 0; FBCache, DBCache and Δ-DiT skip a range), and
/// <see cref="RecordBlock"/> after every block that ran;</item>
/// <item>inside a block, per module: <see cref="SelectTokens"/> (token level: ToCa, DuCa; MLP only), else
/// <see cref="TryForecast"/> (module level: FORA, TaylorSeer, FoCa, SmoothCache), and <see cref="Record"/> after a
/// module that was computed in full or in part; <see cref="RecordAttentionScores"/> after an attention that a policy
/// asked to see (<see cref="WantsAttentionScores"/>), and <see cref="RecordValueNorms"/> likewise
/// (<see cref="WantsValueNorms"/>).</item>
/// </list>
/// Embedders and the final layer always run. On a module-cached step every block still computes its adaLN
/// modulation from the current conditioning and applies the current gates to the forecast. With classifier-free
/// guidance the forward is one batch [cond; uncond], so one decision covers both halves and every tensor passed
/// here holds both halves (docs/methods.md §0). Members with a body are optional: a policy overrides those it uses;
/// only <see cref="BeginStep"/> and <see cref="CacheBytes"/> are required.
/// </summary>
public interface ICachePolicy
{
    /// <summary>Starts sampling ordinal <paramref name="n"/> (0 = noisiest) at model timestep <paramref name="timestep"/>.</summary>
    void BeginStep(int n, float timestep);

    /// <summary>
    /// Block level. <paramref name="x"/> (B, T, D) holds the input of block <paramref name="from"/>. Return
    /// <paramref name="from"/> to have the block run; or j in (from, depth] after writing the output of block j − 1
    /// into <paramref name="x"/>: blocks from … j − 1 are then skipped and the next call (if j &lt; depth) is for
    /// block j.
    /// </summary>
    int SkipBlocks(int from, Span<float> x) => from;

    /// <summary>After block <paramref name="block"/> ran this step: its output (B, T, D).</summary>
    void RecordBlock(int block, ReadOnlySpan<float> output)
    {
    }

    /// <summary>
    /// Module level. Return true after writing a stand-in for the module output of <paramref name="site"/> into
    /// <paramref name="output"/> (B, T, D); return false to have the model compute it (and call <see cref="Record"/>).
    /// </summary>
    bool TryForecast(FeatureSite site, Span<float> output) => false;

    /// <summary>The module output of <paramref name="site"/> computed this step, in full or in part (B, T, D).</summary>
    void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
    }

    /// <summary>
    /// Token level, asked before <see cref="TryForecast"/> for MLP sites. Return −1 for no partial step. Otherwise
    /// return k in [0, T] after writing the stale module output into <paramref name="output"/> (B, T, D) and, per
    /// image b, the k token indices to recompute into <paramref name="tokens"/>[b·k … b·k + k − 1]: the model
    /// recomputes the module on those tokens only, writes them into <paramref name="output"/> and calls
    /// <see cref="Record"/> with the result.
    /// </summary>
    int SelectTokens(FeatureSite site, Span<float> output, Span<int> tokens) => -1;

    /// <summary>Whether block <paramref name="block"/>, if its attention runs this step, should report attention scores.</summary>
    bool WantsAttentionScores(int block) => false;

    /// <summary>
    /// The attention each token received in block <paramref name="block"/> (B, T):
    /// <c>received[b, k] = Σ_q mean_h softmax(q·kᵀ/√d)[b, h, q, k]</c>, from an explicit-softmax attention.
    /// </summary>
    void RecordAttentionScores(int block, ReadOnlySpan<float> received)
    {
    }

    /// <summary>Whether block <paramref name="block"/>, if its attention runs this step, should report its value norms.</summary>
    bool WantsValueNorms(int block) => false;

    /// <summary>
    /// The L2 norm of every head's value vector in block <paramref name="block"/> (B, H, T):
    /// <c>norms[b, h, t] = ‖v[b, h, t, :]‖₂</c>, v from the attention's qkv projection (the input of ToCa's and DuCa's
    /// <c>kv-norm</c> score). Any attention kernel can supply it; no explicit softmax is needed.
    /// </summary>
    void RecordValueNorms(int block, ReadOnlySpan<float> norms)
    {
    }

    /// <summary>Whether the model should pass block 0's modulated input to <see cref="ObserveModulatedInput"/>.</summary>
    bool WantsModulatedInput => false;

    /// <summary>
    /// Block 0's <c>modulate(norm1(x), shift_msa, scale_msa)</c> for this step (B, T, D), before
    /// <see cref="SkipBlocks"/> is asked about block 0.
    /// </summary>
    void ObserveModulatedInput(ReadOnlySpan<float> modulated)
    {
    }

    /// <summary>Bytes of feature storage this policy holds for the run (for reports).</summary>
    long CacheBytes { get; }
}
