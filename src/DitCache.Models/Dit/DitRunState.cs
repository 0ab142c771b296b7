using System;
using DitCache.Tensors;

namespace DitCache.Models;

/// <summary>
/// Every activation buffer of one forward, allocated once per (batch, resolution) and reused by every step
/// (llama2.c's RunState; CONTRIBUTING.md: nothing allocates in the step loop). Shapes use B = batch rows (2·N with CFG), T tokens, D hidden.
/// </summary>
public sealed class DitRunState
{
    /// <summary>Allocates the buffers for <paramref name="batch"/> rows of <paramref name="config"/>.</summary>
    public DitRunState(DitConfig config, int batch, int threads)
    {
        if (batch < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be at least 1");
        }

        CheckFits(config, batch, threads);
        Config = config;
        Batch = batch;
        int b = batch, t = config.Tokens, d = config.Hidden, p = config.Patch;
        int pixels = config.InputSize * config.InputSize;
        X = new float[b * t * d];
        H = new float[b * t * d];
        Feature = new float[b * t * d];
        TokenIndex = new int[b * t];
        AttnProbabilities = new float[config.Heads * t * t];
        AttnReceived = new float[b * t];
        ValueNorms = new float[b * config.Heads * t];
        Qkv = new float[b * t * 3 * d];
        AttnCore = new float[b * t * d];
        MlpHidden = new float[b * t * config.MlpHidden];
        Im2Col = new float[b * t * config.InChannels * p * p];
        AttnScratch = new float[Kernels.AttentionScratchSize(t, config.HeadDim, Math.Max(1, threads))];
        FewRowsScratch = new float[Kernels.LinearFewRowsScratchSize(Math.Max(d, DitWeights.TimeFrequencyDim))];
        TimeFreq = new float[b * DitWeights.TimeFrequencyDim];
        TimeHidden = new float[b * d];
        C = new float[b * d];
        CondC = new float[b * d];
        Conditions = new ConditionRows(b);
        CondMod = new float[b * 6 * d];
        SiluC = new float[b * d];
        Mod = new float[b * 6 * d];
        FinalMod = new float[b * 2 * d];
        FinalOut = new float[b * t * p * p * config.OutChannels];
        Output = new float[b * config.OutChannels * pixels];
        CfgInput = new float[b * config.InChannels * pixels];
        CfgTimesteps = new float[b];
        CfgLabels = new int[b];
        Stats = new ForwardStats(config.Depth);
        PassRows = new int[b];
        RunFlags = new bool[b];
        UseAllRows();
    }

    /// <summary>
    /// Bytes of the buffers for <paramref name="batch"/> rows of <paramref name="config"/>, and the element count of the
    /// largest one; in 64-bit arithmetic, so any batch and model size can be asked about.
    /// </summary>
    public static (long Bytes, long LargestElements) Size(DitConfig config, int batch)
    {
        ArgumentNullException.ThrowIfNull(config);
        long b = batch, t = config.Tokens, d = config.Hidden, p = config.Patch, pixels = (long)config.InputSize * config.InputSize;
        long[] elements =
        [
            b * t * d * 3, b * t, config.Heads * t * t, b * t, b * t * 3 * d, b * t * d, b * t * config.MlpHidden,
            b * t * config.InChannels * p * p, b * DitWeights.TimeFrequencyDim, b * d * 18, b * t * p * p * config.OutChannels,
            b * config.OutChannels * pixels, b * config.InChannels * pixels, b * 3,
        ];
        long largest = 0, total = 0;
        foreach (long e in elements)
        {
            largest = Math.Max(largest, e);
            total += e;
        }

        return (total * sizeof(float), largest);
    }

    // A batch too large for the machine is the user's to fix (fewer images at once), not an internal error: checked
    // before anything is allocated, against the array limit and the memory this process may use.
    private static void CheckFits(DitConfig config, int batch, int threads)
    {
        (long bytes, long largest) = Size(config, batch);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (largest > Array.MaxLength || bytes > available || threads > Kernels.MaxThreadsFor(config.Tokens, config.HeadDim))
        {
            throw new DitCacheException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"a batch of {batch} rows of {config.Name} ({config.Tokens} tokens, hidden {config.Hidden}) with {threads} threads needs {bytes / (double)(1L << 30):F2} GiB of activations (largest buffer {largest} floats); this process may use {available / (double)(1L << 30):F2} GiB and an array holds {Array.MaxLength}: sample fewer images at once (--classes, --batch) or use fewer --threads"));
        }
    }

    /// <summary>The config these buffers fit.</summary>
    public DitConfig Config { get; }

    /// <summary>Rows of the batched forward.</summary>
    public int Batch { get; }

    /// <summary>
    /// Rows of the current block-stack pass: <see cref="Batch"/>, or fewer while a policy that decides per sample runs
    /// the stack on some rows only; they sit in the front rows of every (B, …) activation buffer.
    /// </summary>
    internal int Rows { get; private set; }

    /// <summary>The batch row of each of the current pass's rows, ascending (Rows).</summary>
    internal int[] PassRows { get; }

    /// <summary>Per batch row, whether it runs the pass a policy is selecting (B).</summary>
    internal bool[] RunFlags { get; }

    /// <summary>N while a CFG forward runs (rows i and N + i are one image), else 0.</summary>
    internal int CfgHalf { get; set; }

    /// <summary>
    /// Buffers of per-sample passes and block verification (<see cref="Caching.ICachePolicy.DecidesPerSample"/>), or
    /// null. Four (B, T, D) buffers, allocated once: by <see cref="SamplePasses"/> before a run, else by the first
    /// forward that needs them.
    /// </summary>
    internal SampleBuffers? SampleBuffers { get; private set; }

    /// <summary>
    /// Whether the per-sample buffers are allocated: set it before the step loop when the run's policy decides per
    /// sample (the sampling pipeline does), so that no forward allocates them. Setting it allocates four (B, T, D)
    /// buffers once; clearing it drops them.
    /// </summary>
    public bool SamplePasses
    {
        get => SampleBuffers is not null;
        set
        {
            if (value)
            {
                EnsureSampleBuffers();
            }
            else
            {
                SampleBuffers = null;
            }
        }
    }

    /// <summary>The per-sample buffers, allocated on first use.</summary>
    internal SampleBuffers EnsureSampleBuffers() => SampleBuffers ??= new SampleBuffers(X.Length);

    /// <summary>The current pass covers every batch row, in order.</summary>
    internal void UseAllRows()
    {
        for (int i = 0; i < PassRows.Length; i++)
        {
            PassRows[i] = i;
        }

        Rows = Batch;
    }

    /// <summary>The current pass covers the rows marked in <paramref name="run"/> (B), in batch order.</summary>
    internal void UseRows(ReadOnlySpan<bool> run)
    {
        int k = 0;
        for (int i = 0; i < run.Length; i++)
        {
            if (run[i])
            {
                PassRows[k++] = i;
            }
        }

        Rows = k;
    }

    /// <summary>Residual stream (B, T, D).</summary>
    internal float[] X { get; }

    /// <summary>Normalised and modulated stream (B, T, D).</summary>
    internal float[] H { get; }

    /// <summary>Module output before its gate, computed or forecast (B, T, D).</summary>
    internal float[] Feature { get; }

    /// <summary>Per image, the tokens a token-wise cache asked to recompute (B, k ≤ T).</summary>
    internal int[] TokenIndex { get; }

    /// <summary>One image's attention maps, for policies that want attention scores (heads, T, T).</summary>
    internal float[] AttnProbabilities { get; }

    /// <summary>Attention received per token, Σ_q mean_h P[q, k] (B, T).</summary>
    internal float[] AttnReceived { get; }

    /// <summary>L2 norm of every head's value vector, ‖v[b, h, t, :]‖₂ (B, H, T).</summary>
    internal float[] ValueNorms { get; }

    /// <summary>Attention projections [q | k | v] (B, T, 3D).</summary>
    internal float[] Qkv { get; }

    /// <summary>Attention heads concatenated, before attn.proj (B, T, D).</summary>
    internal float[] AttnCore { get; }

    /// <summary>MLP hidden activations (B, T, 4D).</summary>
    internal float[] MlpHidden { get; }

    /// <summary>Patch-embedding im2col (B·T, C·p·p).</summary>
    internal float[] Im2Col { get; }

    /// <summary>Flash-attention scratch, per thread: packed K, Vᵀ, one query block and its running softmax state.</summary>
    internal float[] AttnScratch { get; }

    /// <summary>Scratch of the conditioning Linears (<see cref="Kernels.LinearFewRows"/>): xᵀ and a weight tail tile.</summary>
    internal float[] FewRowsScratch { get; }

    /// <summary>Sinusoidal timestep features of the distinct rows (U, 256).</summary>
    internal float[] TimeFreq { get; }

    /// <summary>Timestep MLP hidden of the distinct rows (U, D).</summary>
    internal float[] TimeHidden { get; }

    /// <summary>Conditioning c = t_emb + y_emb (B, D).</summary>
    internal float[] C { get; }

    /// <summary>The distinct (timestep, label) rows of the current forward, and the run's prepared conditioning.</summary>
    internal ConditionRows Conditions { get; }

    /// <summary>c of each distinct row (U, D).</summary>
    internal float[] CondC { get; }

    /// <summary>Modulation of each distinct row before it is copied out to <see cref="Mod"/> or <see cref="FinalMod"/> (U, 6D).</summary>
    internal float[] CondMod { get; }

    /// <summary>SiLU(c) of each distinct row, the input of every adaLN projection (U, D).</summary>
    internal float[] SiluC { get; }

    /// <summary>Current block's modulation: shift/scale/gate for attention then MLP (B, 6D).</summary>
    internal float[] Mod { get; }

    /// <summary>Final layer's shift and scale (B, 2D).</summary>
    internal float[] FinalMod { get; }

    /// <summary>Final linear output per token (B, T, p·p·out).</summary>
    internal float[] FinalOut { get; }

    /// <summary>Model output image (B, out, H, W).</summary>
    internal float[] Output { get; }

    /// <summary>CFG batch input [x; x] (B, C, H, W).</summary>
    internal float[] CfgInput { get; }

    /// <summary>CFG batch timesteps (B).</summary>
    internal float[] CfgTimesteps { get; }

    /// <summary>CFG batch labels [y; null] (B).</summary>
    internal int[] CfgLabels { get; }

    /// <summary>What the current (or last) forward did; cleared as each forward starts.</summary>
    internal ForwardStats Stats { get; }

    /// <summary>FLOPs of the last forward, paper convention (docs/methods.md §9.1).</summary>
    public double LastFlops => Stats.Flops;

    /// <summary>Modules (attention or MLP) computed in the last forward.</summary>
    public int LastModulesComputed => Stats.ModulesComputed;

    /// <summary>Modules replaced by the cache in the last forward.</summary>
    public int LastModulesForecast => Stats.ModulesForecast;

    /// <summary>MLP modules recomputed on some tokens only (token-wise caches) in the last forward.</summary>
    public int LastModulesPartial => Stats.ModulesPartial;

    /// <summary>Blocks the cache skipped (stood in for as a range) in the last forward.</summary>
    public int LastBlocksSkippedCount => Stats.BlocksSkipped;

    /// <summary>Whether the cache replaced the whole block stack in the last forward.</summary>
    public bool LastBlocksSkipped => LastBlocksSkippedCount == Config.Depth;

    /// <summary>True when the last forward ran every block in full.</summary>
    public bool LastFullyComputed => LastBlocksSkippedCount == 0 && LastModulesForecast == 0 && LastModulesPartial == 0;

    /// <summary>What happened at each site in the last forward, indexed block·2 + (0 attention, 1 MLP).</summary>
    public ReadOnlySpan<SiteOutcome> LastSites => Stats.Sites;

    /// <summary>
    /// Diagnostics only: when set, every forecast module (and a skipped block stack) is also computed from the same
    /// inputs, and the relative L2 error of the stand-in is kept in <see cref="LastShadowErrors"/> and
    /// <see cref="LastShadowBlocksError"/>. The sample is unchanged (the stand-in still feeds the model); the wall
    /// clock is not representative. Setting it allocates three (B, T, D) buffers once.
    /// </summary>
    public bool Shadow
    {
        get => ShadowBuffers is not null;
        set
        {
            if (value && ShadowBuffers is null)
            {
                ShadowBuffers = new ShadowBuffers(X.Length);
            }
            else if (!value)
            {
                ShadowBuffers = null;
            }
        }
    }

    /// <summary>
    /// With <see cref="Shadow"/>: per site of the last forward, ‖forecast − true‖₂ / ‖true‖₂ over the whole batch;
    /// NaN where the site was computed (or the whole stack was skipped).
    /// </summary>
    public ReadOnlySpan<double> LastShadowErrors => Stats.ShadowErrors;

    /// <summary>With <see cref="Shadow"/>: relative L2 error of the output of the last range of blocks the cache skipped in the last forward (the whole stack for Spectrum, TeaCache, MagCache); NaN when every block ran.</summary>
    public double LastShadowBlocksError => Stats.ShadowBlocksError;

    /// <summary>
    /// Reports only: when set, every forward keeps the tokens each partial MLP recomputed (token-wise caches), read
    /// through <see cref="LastTokenCounts"/> and <see cref="LastTokens"/>. Setting it allocates depth + depth·B·T ints
    /// once; off, nothing is kept.
    /// </summary>
    public bool RecordTokens
    {
        get => Stats.TokenCounts is not null;
        set => Stats.RecordTokens(value, Batch, Config.Tokens);
    }

    /// <summary>With <see cref="RecordTokens"/>: per block, tokens per batch row its MLP recomputed in the last forward; −1 where it was not partial (depth). Empty when off.</summary>
    public ReadOnlySpan<int> LastTokenCounts => Stats.TokenCounts;

    /// <summary>
    /// With <see cref="RecordTokens"/> (depth, B, T): per block l whose count k ≥ 0, entries [l·B·T + b·k, … + k) are
    /// the tokens batch row b recomputed, in the order the cache picked them. Empty when off.
    /// </summary>
    public ReadOnlySpan<int> LastTokens => Stats.Tokens;

    /// <summary>The shadow-diagnostics buffers, or null when <see cref="Shadow"/> is off.</summary>
    internal ShadowBuffers? ShadowBuffers { get; private set; }
}

/// <summary>What a forward did at one cache site.</summary>
public enum SiteOutcome : byte
{
    /// <summary>The block was skipped: a block-level cache stood in for a range of blocks (or the whole stack).</summary>
    Skipped,

    /// <summary>The module ran.</summary>
    Computed,

    /// <summary>The cache stood in for the module.</summary>
    Forecast,

    /// <summary>The module was recomputed on some tokens; the cache stood in for the rest.</summary>
    Partial,
}
