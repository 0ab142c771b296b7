using System;

namespace DitCache.Caching;

/// <summary>
/// The seam between the DiT and an accelerator. <c>DitModel.Forward</c> calls it at named points that a reader of
/// the forward pass sees (STYLE.md rules 7 and 8):
/// <list type="number">
/// <item><see cref="BeginStep"/> once per sampling step, by the denoising loop, before the model runs;</item>
/// <item><see cref="TrySkipBlocks"/> before block 0 (block-stack level: Spectrum, FBCache, TeaCache, MagCache);</item>
/// <item><see cref="TryForecast"/> before each module (per block and site: FORA, TaylorSeer, FoCa), and
/// <see cref="Record"/> after a module that was computed;</item>
/// <item><see cref="RecordBlocks"/> after the block stack ran.</item>
/// </list>
/// Embedders and the final layer always run. On a module-cached step every block still computes its adaLN
/// modulation from the current conditioning and applies the current gates to the forecast. With classifier-free
/// guidance the forward is one batch [cond; uncond], so one decision covers both halves and every tensor passed
/// here holds both halves (METHODS.md section 0).
/// </summary>
public interface ICachePolicy
{
    /// <summary>Starts sampling ordinal <paramref name="n"/> (0 = noisiest) at model timestep <paramref name="timestep"/>.</summary>
    void BeginStep(int n, float timestep);

    /// <summary>
    /// Block-stack level. <paramref name="x"/> (B, T, D) holds the input of block 0. Return true after writing the
    /// output of the whole block stack into <paramref name="x"/>: the blocks are then skipped for this step.
    /// </summary>
    bool TrySkipBlocks(Span<float> x);

    /// <summary>
    /// Module level. Return true after writing a stand-in for the module output of <paramref name="site"/> into
    /// <paramref name="output"/> (B, T, D); return false to have the model compute it (and call <see cref="Record"/>).
    /// </summary>
    bool TryForecast(FeatureSite site, Span<float> output);

    /// <summary>The module output of <paramref name="site"/> computed this step (B, T, D).</summary>
    void Record(FeatureSite site, ReadOnlySpan<float> output);

    /// <summary>Whether <see cref="RecordBlocks"/> needs the block-stack input (the model then keeps a copy).</summary>
    bool WantsBlockInput { get; }

    /// <summary>
    /// After the block stack ran this step: its input (empty unless <see cref="WantsBlockInput"/>) and output, (B, T, D).
    /// </summary>
    void RecordBlocks(ReadOnlySpan<float> blockInput, ReadOnlySpan<float> blockOutput);

    /// <summary>Bytes of feature storage this policy holds for the run (for reports).</summary>
    long CacheBytes { get; }
}
