using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// ToCa: Accelerating Diffusion Transformers with Token-wise Feature Caching (Zou et al., ICLR 2025, arXiv 2410.05317;
/// official code Shenyi-Z/ToCa <c>DiT-ToCa/</c>; docs/methods.md §5.2). Full steps run every block with an explicit
/// softmax and keep, per block, the attention and MLP outputs (pre-gate) and the attention each token received. The
/// steps between reuse the attention output and recompute the MLP on the highest-scoring tokens only; the score is
/// the received attention (s1), plus how many steps a token has gone stale (s3), plus a bonus for the best token of
/// each 2×2 cell (s4). Spec: <c>toca:n=3,ratio=0.07</c> (the README's DDIM-50 command).
/// </summary>
/// <param name="Threshold">N (knob <c>n</c>, official <c>fresh_threshold</c>, default 3 for DDIM-50; the README uses 4 for DDPM-250): the base force-activation cycle.</param>
/// <param name="Ratio">Knob <c>ratio</c> (official <c>fresh_ratio</c>, default 0.07): the fresh-token ratio before the scheduler's factors, in [0, 1].</param>
/// <param name="Schedule">Knob <c>sched</c> (official <c>ratio_scheduler</c>): <c>ddim50</c> (default, <c>ToCa-ddim50</c>), <c>ddpm250</c> or <c>constant</c>.</param>
/// <param name="StaleWeight">λ3 (knob <c>w</c>, official <c>soft_fresh_weight</c>, default 0.25): weight of the staleness score s3 = stale steps / N.</param>
/// <param name="Bonus">Knob <c>bonus</c> (default 0.6, hard-coded in the official <c>cache_cutfresh.py</c>): the s4 bonus of the best token per 2×2 cell, as a fraction of its score.</param>
/// <param name="Decision">Knob <c>schedule</c>: <c>block</c> (default, the official code: the step type decided in every block, so block 0 of a full step may reset the cycle and leave blocks 1 … depth−1 a ToCa step) or <c>step</c> (decided once per step, the papers' reading); see <see cref="TokenwiseSchedule"/>.</param>
/// <param name="Score">Knob <c>score</c> (official <c>cache_type</c>): <c>attention</c> (default, s1), <c>random</c> (uniform in [0, 1) per token instead of s1, the same for both halves of a CFG batch) or <c>kv-norm</c> (from the value norms of the full step's attention); s3 and s4 are added to each.</param>
public sealed record ToCaOptions(int Threshold = 3, double Ratio = 0.07, TokenRatioSchedule Schedule = TokenRatioSchedule.Ddim50,
    double StaleWeight = 0.25, double Bonus = 0.6, TokenDecision Decision = TokenDecision.Block, TokenScoreKind Score = TokenScoreKind.Attention) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "toca";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant(
        $"toca:n={Threshold},ratio={Ratio},sched={ScheduleName(Schedule)},w={StaleWeight},bonus={Bonus},schedule={DecisionName(Decision)},score={ScoreName(Score)}");

    /// <summary>Parses <c>toca:n=N,ratio=r,sched=ddim50|ddpm250|constant,w=λ3,bonus=b,schedule=block|step,score=attention|random|kv-norm</c>; unknown knobs are errors.</summary>
    public static ToCaOptions FromSpec(CacheSpec spec)
    {
        var options = new ToCaOptions(spec.GetInt("n", 3), spec.GetDouble("ratio", 0.07),
            ParseSchedule(spec.GetChoice("sched", "ddim50", "ddim50", "ddpm250", "constant")),
            spec.GetDouble("w", 0.25), spec.GetDouble("bonus", 0.6), ParseDecision(spec), ParseScore(spec));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate() => TokenwiseChecks.Validate(Name, Threshold, Ratio, StaleWeight, Bonus);

    /// <summary>The step types of block 0 and of blocks 1 … depth−1 for every sampling ordinal (no aggressive steps in ToCa).</summary>
    /// <remarks>With <c>ratio=0</c> the cycle is fixed at N as in the official ratio-0 (FORA) branch.</remarks>
    public TokenwiseSchedule StepTypes(int steps) => TokenwiseSchedule.Create(steps, Threshold, aggressive: false, Decision, fixedCycle: Ratio == 0);

    /// <summary>Which sampling ordinals run every block (a mixed step, full in block 0 only, is not one).</summary>
    public bool[] FullSteps(int steps) => StepTypes(steps).FullSteps();

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new ToCa(StepTypes(run.Steps), new TokenwiseSettings(Threshold, Ratio, Schedule, StaleWeight, Bonus, Score), run);
    }

    internal static string ScoreName(TokenScoreKind score) => score switch
    {
        TokenScoreKind.Random => "random",
        TokenScoreKind.KvNorm => "kv-norm",
        _ => "attention",
    };

    internal static TokenScoreKind ParseScore(CacheSpec spec) => spec.GetChoice("score", "attention", "attention", "random", "kv-norm") switch
    {
        "random" => TokenScoreKind.Random,
        "kv-norm" => TokenScoreKind.KvNorm,
        _ => TokenScoreKind.Attention,
    };

    internal static string DecisionName(TokenDecision decision) => decision == TokenDecision.Step ? "step" : "block";

    internal static TokenDecision ParseDecision(CacheSpec spec) =>
        spec.GetChoice("schedule", "block", "block", "step") == "step" ? TokenDecision.Step : TokenDecision.Block;

    internal static string ScheduleName(TokenRatioSchedule schedule) => schedule switch
    {
        TokenRatioSchedule.Ddim50 => "ddim50",
        TokenRatioSchedule.Ddpm250 => "ddpm250",
        _ => "constant",
    };

    internal static TokenRatioSchedule ParseSchedule(string name) => name switch
    {
        "ddim50" => TokenRatioSchedule.Ddim50,
        "ddpm250" => TokenRatioSchedule.Ddpm250,
        _ => TokenRatioSchedule.Constant,
    };
}

/// <summary>The base token score of ToCa and DuCa (knob <c>score</c>, official <c>cache_type</c>).</summary>
public enum TokenScoreKind
{
    /// <summary>s1, the normalised attention each token received at the block's last full step (<c>attention</c>).</summary>
    Attention,

    /// <summary>
    /// Uniform in [0, 1) per token, drawn afresh at every partial MLP and shared by the cond and uncond rows of an
    /// image (official <c>random</c>: <c>torch.rand</c> on half the batch, concatenated twice). Our own seeded stream,
    /// not torch's: the same distribution, not the same draws.
    /// </summary>
    Random,

    /// <summary>
    /// The official <c>kv-norm</c> (<c>kv_norm_score</c>, "V-caching" in the DuCa paper): per image row
    /// <c>Σ_h (1 − ‖v[h, t]‖₂)</c>, L2-normalised over the tokens, from the value vectors of the block's last full
    /// step. Needs no attention map, so the full steps keep the fused attention.
    /// </summary>
    KvNorm,
}

/// <summary>Where ToCa and DuCa decide the step type (knob <c>schedule</c>).</summary>
public enum TokenDecision
{
    /// <summary>In every block, as the official code does (<c>schedule=block</c>, the default): mixed steps occur.</summary>
    Block,

    /// <summary>Once per step, before block 0 (<c>schedule=step</c>): every block of a step has the same type.</summary>
    Step,
}

/// <summary>
/// The step types of a token-wise run: <see cref="Block0"/>[n] for block 0 and <see cref="Rest"/>[n] for blocks 1 …
/// depth−1 of sampling ordinal n (docs/methods.md §5.2). The official code (<c>global_force_fresh.py</c>,
/// <c>cal_type.py</c>) decides in every block against the cycle C last set, and a full block resets C through
/// <c>force_init</c> → <c>force_scheduler</c>. So in block 0 of a full step C is already the new cycle; blocks 1 …
/// depth−1 are full only when <c>i mod C_new = 0</c> as well, else a ToCa step (DuCa: aggressive when
/// <c>i mod C_new</c> is even). The step reading decides once, so both arrays are equal.
/// </summary>
public sealed record TokenwiseSchedule(TokenStep[] Block0, TokenStep[] Rest)
{
    /// <summary>
    /// The schedule of <paramref name="steps"/> ordinals with base cycle <paramref name="threshold"/>. With
    /// <paramref name="fixedCycle"/> every full step sets C = N (the official <c>force_scheduler</c> with
    /// <c>fresh_ratio == 0</c>: step weight 0, no forced cycle 2), so the schedule is FORA's and both readings agree.
    /// </summary>
    public static TokenwiseSchedule Create(int steps, int threshold, bool aggressive, TokenDecision decision, bool fixedCycle = false)
    {
        var block0 = new TokenStep[steps];
        var rest = new TokenStep[steps];
        int cycle = threshold;
        for (int n = 0; n < steps; n++)
        {
            int i = steps - 1 - n;
            block0[n] = Type(n, i, cycle, aggressive);
            if (block0[n] == TokenStep.Full)
            {
                cycle = fixedCycle ? threshold : TokenScore.CycleLength(threshold, i, steps);   // force_init in block 0 resets C …
            }

            rest[n] = decision == TokenDecision.Block ? Type(n, i, cycle, aggressive) : block0[n];  // … before blocks 1 … decide
        }

        return new TokenwiseSchedule(block0, rest);
    }

    /// <summary>Which ordinals run every block.</summary>
    public bool[] FullSteps()
    {
        var full = new bool[Block0.Length];
        for (int n = 0; n < full.Length; n++)
        {
            full[n] = Block0[n] == TokenStep.Full && Rest[n] == TokenStep.Full;
        }

        return full;
    }

    /// <summary>
    /// One letter per ordinal: F full, T ToCa, A aggressive; a mixed step (block 0 full, the rest not) is m (rest
    /// ToCa) or a (rest aggressive).
    /// </summary>
    public string Letters()
    {
        var letters = new char[Block0.Length];
        for (int n = 0; n < letters.Length; n++)
        {
            letters[n] = (Block0[n], Rest[n]) switch
            {
                (TokenStep.Full, TokenStep.Full) => 'F',
                (TokenStep.Full, TokenStep.Partial) => 'm',
                (TokenStep.Full, _) => 'a',
                (TokenStep.Partial, _) => 'T',
                _ => 'A',
            };
        }

        return new string(letters);
    }

    private static TokenStep Type(int n, int i, int cycle, bool aggressive)
    {
        int phase = i % cycle;
        if (n == 0 || phase == 0)
        {
            return TokenStep.Full;
        }

        return aggressive && phase % 2 == 0 ? TokenStep.Aggressive : TokenStep.Partial;
    }
}

/// <summary>The knobs a token-wise policy runs on (ToCa and DuCa share the machinery).</summary>
internal readonly record struct TokenwiseSettings(int Threshold, double Ratio, TokenRatioSchedule Schedule, double StaleWeight, double Bonus,
    TokenScoreKind Score = TokenScoreKind.Attention);

/// <summary>Knob checks ToCa and DuCa share.</summary>
internal static class TokenwiseChecks
{
    public static void Validate(string name, int threshold, double ratio, double staleWeight, double bonus)
    {
        if (threshold < 1)
        {
            throw new DitCacheException($"--cache {name}: n={threshold} is not a valid threshold; n must be at least 1 (the force-activation cycle in steps)", exitCode: 2);
        }

        if (!double.IsFinite(ratio) || ratio < 0 || ratio > 1)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache {name}: ratio={ratio} is outside [0, 1] (the fresh-token ratio before the scheduler's factors)"), exitCode: 2);
        }

        if (!double.IsFinite(staleWeight) || staleWeight < 0)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache {name}: w={staleWeight} must be 0 or more (the weight of the staleness score)"), exitCode: 2);
        }

        if (!double.IsFinite(bonus) || bonus < 0)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache {name}: bonus={bonus} must be 0 or more (the 2x2-cell bonus as a fraction of the score)"), exitCode: 2);
        }
    }
}

/// <summary>
/// The token-wise policy of one run, for ToCa and DuCa (DuCa adds <see cref="TokenStep.Aggressive"/> steps). Storage,
/// allocated at build: per block the attention and MLP outputs (B, T, D), s1 (B, T) and the staleness counters of the
/// MLP (B, T); with aggressive steps, the last block's output (B, T, D). With classifier-free guidance every image row
/// of the batch [cond; uncond] is scored and selected on its own, with the same k.
/// </summary>
public sealed class ToCa : ICachePolicy
{
    private readonly TokenStep[] _block0;   // [n] block 0's step type
    private readonly TokenStep[] _rest;     // [n] the step type of blocks 1 … depth−1
    private readonly TokenwiseSettings _settings;
    private readonly int _steps;
    private readonly int _depth;
    private readonly int _rows;             // B
    private readonly int _tokens;           // T
    private readonly int _hidden;           // D
    private readonly int _side;             // √T
    private readonly int _length;           // B·T·D
    private readonly float[][] _store;      // [site] (B, T, D): A_l and M_l, M_l refreshed token by token
    private readonly bool[] _has;           // [site] whether _store holds a value of this run
    private readonly double[][] _s1;        // [block] (B, T): the base score of the last full step (s1 or kv-norm)
    private readonly int[][] _stale;        // [block] (B, T): steps since each MLP token was last computed
    private readonly float[]? _stack;       // (B, T, D): the last block's output, for aggressive steps
    private bool _hasStack;
    private readonly double[] _score;       // (T) scratch
    private readonly double[]? _noise;      // (B, T) random base scores of this partial MLP (score=random)
    private readonly Random? _random;       // score=random: seeded per run, so runs repeat
    private readonly int _pairOffset;       // B/2 with a CFG batch [cond; uncond] (rows b and b + B/2 share a draw), else 0
    private readonly double[] _keys;        // (T) scratch
    private readonly int[] _order;          // (T) scratch
    private readonly int[] _selected;       // (B, k) the tokens handed to the model this step
    private int _selectedCount;
    private int _n = -1;
    private TokenStep _type0;
    private TokenStep _typeRest;

    internal ToCa(TokenwiseSchedule types, TokenwiseSettings settings, CacheRunInfo run)
    {
        _block0 = types.Block0;
        _rest = types.Rest;
        _settings = settings;
        _steps = run.Steps;
        _depth = run.Depth;
        _rows = run.Batch;
        _tokens = run.Tokens;
        _hidden = run.Hidden;
        _length = run.FeatureLength;
        _side = (int)Math.Round(Math.Sqrt(_tokens));
        if (_side * _side != _tokens && settings.Bonus != 0)
        {
            throw new ArgumentException($"the 2x2 spatial bonus needs a square token grid; this run has {_tokens} tokens (set bonus=0 to run without it)", nameof(run));
        }

        _store = new float[FeatureSite.PerBlock * _depth][];
        for (int k = 0; k < _store.Length; k++)
        {
            _store[k] = new float[_length];
        }

        _has = new bool[_store.Length];
        _s1 = new double[_depth][];
        _stale = new int[_depth][];
        for (int l = 0; l < _depth; l++)
        {
            _s1[l] = new double[_rows * _tokens];
            _stale[l] = new int[_rows * _tokens];
        }

        if (Array.IndexOf(_block0, TokenStep.Aggressive) >= 0 || (_depth > 1 && Array.IndexOf(_rest, TokenStep.Aggressive) >= 0))
        {
            _stack = new float[_length];
        }

        _score = new double[_tokens];
        if (settings.Score == TokenScoreKind.Random)
        {
            _noise = new double[_rows * _tokens];
            _random = new Random(0);
            _pairOffset = run.CfgScale > 1 && _rows % 2 == 0 ? _rows / 2 : 0;
        }

        _keys = new double[_tokens];
        _order = new int[_tokens];
        _selected = new int[_rows * _tokens];
        CacheBytes = (((long)_store.Length + (_stack is null ? 0 : 1)) * _length * sizeof(float))
            + ((long)_depth * _rows * _tokens * (sizeof(double) + sizeof(int)));
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("the token-wise cache", n, _n, _block0.Length);

        if (n == 0)
        {
            Array.Clear(_has);
            _hasStack = false;
        }

        _n = n;
        _type0 = _block0[n];
        _typeRest = _rest[n];
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        if ((uint)from >= (uint)_depth || TypeOf(from) != TokenStep.Aggressive || !_hasStack)
        {
            return from;
        }

        if (x.Length != _length)
        {
            throw new ArgumentException($"block-stack tensor has {x.Length} floats; this run's (B, T, D) has {_length}", nameof(x));
        }

        _stack.AsSpan().CopyTo(x);                                          // DuCa: the last block's output of the previous call
                                                                            // (a mixed step discards block 0's output here)
        return _depth;
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (_stack is null || block != _depth - 1)
        {
            return;
        }

        output.CopyTo(_stack);
        _hasStack = true;
    }

    /// <inheritdoc/>
    public bool WantsAttentionScores(int block) =>
        TypeOf(block) == TokenStep.Full && _settings.Ratio > 0 && _settings.Score == TokenScoreKind.Attention;

    /// <inheritdoc/>
    public bool WantsValueNorms(int block) =>
        TypeOf(block) == TokenStep.Full && _settings.Ratio > 0 && _settings.Score == TokenScoreKind.KvNorm;

    /// <inheritdoc/>
    public void RecordValueNorms(int block, ReadOnlySpan<float> norms)
    {
        int rowTokens = _rows * _tokens;
        if ((uint)block >= (uint)_depth || norms.Length == 0 || norms.Length % rowTokens != 0)
        {
            throw new ArgumentException($"value norms of block {block} have {norms.Length} floats; this run has {_depth} blocks of (B, H, T) with B·T = {rowTokens}", nameof(norms));
        }

        TokenScore.KvNormRows(norms, norms.Length / rowTokens, _tokens, _s1[block]);
    }

    /// <inheritdoc/>
    public void RecordAttentionScores(int block, ReadOnlySpan<float> received)
    {
        if ((uint)block >= (uint)_depth || received.Length != _rows * _tokens)
        {
            throw new ArgumentException($"attention scores of block {block} have {received.Length} floats; this run has {_depth} blocks of (B, T) = {_rows * _tokens}", nameof(received));
        }

        TokenScore.NormalizeRows(received, _tokens, _s1[block]);
    }

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        int k = SiteIndex(site);
        if (TypeOf(site.Block) == TokenStep.Full || !_has[k])
        {
            return false;
        }

        _store[k].CopyTo(output);                                           // attention reused in full (and MLP fallback)
        return true;
    }

    /// <inheritdoc/>
    public int SelectTokens(FeatureSite site, Span<float> output, Span<int> tokens)
    {
        int k = SiteIndex(site);
        if (TypeOf(site.Block) == TokenStep.Full || site.Site != Site.Mlp || !_has[k])
        {
            return -1;
        }

        int l = site.Block;
        int i = _steps - 1 - _n;
        int fresh = TokenScore.FreshCount(TokenScore.FreshRatio(_settings.Ratio, _settings.Schedule, i, _steps, l, _depth), _tokens);
        int[] stale = _stale[l];
        double[] baseScores = _noise ?? _s1[l];
        if (_noise is not null && _random is not null)
        {
            for (int b = 0; b < _rows; b++)
            {
                Span<double> row = _noise.AsSpan(b * _tokens, _tokens);
                if (_pairOffset > 0 && b >= _pairOffset)
                {
                    _noise.AsSpan((b - _pairOffset) * _tokens, _tokens).CopyTo(row);   // uncond row: its cond row's draw
                    continue;
                }

                for (int t = 0; t < _tokens; t++)
                {
                    row[t] = _random.NextDouble();
                }
            }
        }

        for (int b = 0; b < _rows; b++)
        {
            Span<int> staleRow = stale.AsSpan(b * _tokens, _tokens);
            TokenScore.Score(baseScores.AsSpan(b * _tokens, _tokens), staleRow, _settings.StaleWeight, _settings.Threshold,
                _settings.Bonus, _side, _score);
            Span<int> chosen = _selected.AsSpan(b * fresh, fresh);
            TokenScore.TopK(_score, fresh, _keys, _order, chosen);
            for (int t = 0; t < _tokens; t++)
            {
                staleRow[t]++;                                              // s3: stale tokens age by one step …
            }

            foreach (int t in chosen)
            {
                staleRow[t] = 0;                                            // … fresh ones start again
            }
        }

        _selectedCount = fresh;
        _selected.AsSpan(0, _rows * fresh).CopyTo(tokens);
        _store[k].CopyTo(output);                                           // stale M_l; the model overwrites the fresh rows
        return fresh;
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        int k = SiteIndex(site);
        if (output.Length != _length)
        {
            throw new ArgumentException($"feature of {site} has {output.Length} floats; this run's (B, T, D) has {_length}", nameof(output));
        }

        if (TypeOf(site.Block) == TokenStep.Full || !_has[k])
        {
            output.CopyTo(_store[k]);
            _has[k] = true;
            if (site.Site == Site.Mlp)
            {
                Array.Clear(_stale[site.Block]);                           // force activation: every token is fresh
            }

            return;
        }

        for (int b = 0; b < _rows; b++)                                      // a partial MLP: only the fresh rows changed
        {
            foreach (int t in _selected.AsSpan(b * _selectedCount, _selectedCount))
            {
                int at = ((b * _tokens) + t) * _hidden;
                output.Slice(at, _hidden).CopyTo(_store[k].AsSpan(at, _hidden));
            }
        }
    }

    /// <summary>This step's type in block <paramref name="block"/>: block 0 decides first, the later blocks after it.</summary>
    private TokenStep TypeOf(int block) => block == 0 ? _type0 : _typeRest;

    private int SiteIndex(FeatureSite site) => PolicyChecks.SiteIndex(site, _n, _store.Length);
}
