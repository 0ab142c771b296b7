using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// SpeCa: Accelerating Diffusion Transformers with Speculative Feature Caching (Liu et al., ACM MM 2025, arXiv
/// 2509.11628; official code github.com/Shenyi-Z/Cache4Diffusion, <c>dit/speca-dit/</c>: <c>models.py</c>,
/// <c>cache_functions/cal_type.py</c>, <c>cache_functions/cache_init.py</c>, <c>sample.py</c>; docs/methods.md §5.11).
/// Per sample, a step is drafted with TaylorSeer's forecast of every module; from the <c>min+1</c>-th draft after a
/// full step on, the draft is verified: block <c>layer</c> is also computed from the drafted input and its output
/// compared with the drafted one; under the step's threshold the draft is accepted, above it the step is computed in
/// full for that sample. Every sample of a batch decides alone (a CFG pair together). Spec:
/// <c>speca:tau=0.1,decay=0.01,floor=0.01,min=2,max=5,o=4,warmup=3,layer=-1,metric=rel-l1,reject=now</c>.
/// </summary>
/// <param name="Threshold">τ0 (knob <c>tau</c>, default 0.1, the code's <c>--base-threshold</c>): the threshold at the start of sampling.</param>
/// <param name="Decay">β (knob <c>decay</c>, default 0.01, the code's <c>--decay-rate</c>): step n's threshold is max(τ0·β^((n+1)/S), floor).</param>
/// <param name="Floor">The lowest threshold (knob <c>floor</c>, default 0.01, hard-coded in the code's <c>cal_type</c>).</param>
/// <param name="MinDrafts">Drafts after a full step that are used without a check (knob <c>min</c>, default 2, the code's <c>--min-taylor-steps</c>).</param>
/// <param name="MaxDrafts">Most drafts in a row; the next step is full (knob <c>max</c>, default 5, the code's <c>--max-taylor-steps</c>).</param>
/// <param name="MaxOrder">O (knob <c>o</c>, default 4, the code's <c>--max-order</c>): TaylorSeer's highest difference order.</param>
/// <param name="Warmup">K (knob <c>warmup</c>, default 3, the code's <c>first_enhance</c>): steps 0 … K−1 are full for every sample.</param>
/// <param name="Layer">The verified block (knob <c>layer</c>, default −1 = the last block, the code's layer 27 of DiT-XL/2).</param>
/// <param name="Metric">The error (knob <c>metric</c>): <c>rel-l1</c> (default, the code's <c>relative_l1</c>: mean of |d − c| / (|c| + 1e-10)) or <c>l2</c> (‖d − c‖₂ / ‖c‖₂).</param>
/// <param name="Reject">What a failed check does (knob <c>reject</c>): <c>now</c> (default, the paper's reading) computes the step in full; <c>next</c> (the official DiT code) keeps the draft and makes the sample's next step full.</param>
public sealed record SpeCaOptions(double Threshold = 0.1, double Decay = 0.01, double Floor = 0.01, int MinDrafts = 2, int MaxDrafts = 5,
    int MaxOrder = 4, int Warmup = 3, int Layer = -1, string Metric = "rel-l1", string Reject = "now") : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "speca";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant(
        $"speca:tau={Threshold},decay={Decay},floor={Floor},min={MinDrafts},max={MaxDrafts},o={MaxOrder},warmup={Warmup},layer={Layer},metric={Metric},reject={Reject}");

    /// <summary>Parses <c>speca:tau=…,decay=…,floor=…,min=…,max=…,o=…,warmup=…,layer=…,metric=rel-l1|l2,reject=now|next</c>; unknown knobs are errors.</summary>
    public static SpeCaOptions FromSpec(CacheSpec spec)
    {
        var options = new SpeCaOptions(spec.GetDouble("tau", 0.1), spec.GetDouble("decay", 0.01), spec.GetDouble("floor", 0.01),
            spec.GetInt("min", 2), spec.GetInt("max", 5), spec.GetInt("o", 4), spec.GetInt("warmup", 3), spec.GetInt("layer", -1),
            spec.GetChoice("metric", "rel-l1", "rel-l1", "l2"), spec.GetChoice("reject", "now", "now", "next"));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (!(Threshold > 0) || !double.IsFinite(Threshold))
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache speca: tau={Threshold} must be a positive number (the relative error a draft may have at the first step; the code uses 0.1)"), exitCode: 2);
        }

        if (!(Decay > 0) || Decay > 1)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache speca: decay={Decay} must be in (0, 1] (the threshold shrinks by this factor over the run; 1 keeps it constant, the code uses 0.01)"), exitCode: 2);
        }

        if (!(Floor >= 0) || Floor > Threshold)
        {
            throw new DitCacheException(FormattableString.Invariant($"--cache speca: floor={Floor} must be in [0, tau={Threshold}] (the lowest threshold; the code uses 0.01)"), exitCode: 2);
        }

        if (MaxDrafts < 1 || MinDrafts < 0 || MinDrafts > MaxDrafts)
        {
            throw new DitCacheException($"--cache speca: min={MinDrafts}, max={MaxDrafts}: need 0 <= min <= max and max >= 1 (max drafts in a row; the first min of them are not checked; the code uses 2 and 5)", exitCode: 2);
        }

        if (MaxOrder < 0 || MaxOrder > TaylorSeerOptions.MaxSupportedOrder)
        {
            throw new DitCacheException($"--cache speca: o={MaxOrder} is outside [0, {TaylorSeerOptions.MaxSupportedOrder}]; o is the Taylor order of the draft (the code uses 4)", exitCode: 2);
        }

        if (Warmup < 1)
        {
            throw new DitCacheException($"--cache speca: warmup={Warmup} must be at least 1 (step 0 is always computed; the code uses 3)", exitCode: 2);
        }

        if (Layer < -1)
        {
            throw new DitCacheException($"--cache speca: layer={Layer} must be a block index from 0, or -1 for the last block", exitCode: 2);
        }

        if (Metric is not ("rel-l1" or "l2"))
        {
            throw new DitCacheException($"--cache speca: metric={Metric}; expected rel-l1 or l2", exitCode: 2);
        }

        if (Reject is not ("now" or "next"))
        {
            throw new DitCacheException($"--cache speca: reject={Reject}; expected now (compute the step) or next (make the next step full)", exitCode: 2);
        }
    }

    /// <summary>The acceptance threshold of ordinal <paramref name="n"/> of <paramref name="steps"/>: max(τ0·β^((n+1)/S), floor).</summary>
    public double ThresholdAt(int n, int steps) => Math.Max(Threshold * Math.Pow(Decay, (n + 1) / (double)steps), Floor);

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        if (Layer >= run.Depth)
        {
            throw new DitCacheException($"--cache speca: layer={Layer} but the model has blocks 0 … {run.Depth - 1}; use -1 for the last block", exitCode: 2);
        }

        return new SpeCa(this, run);
    }
}

/// <summary>
/// The SpeCa policy of one run. Per batch row and module site, TaylorSeer's stack of O+1 factors (T, D); per sample
/// (a CFG pair counts once) its last full step, its drafts since, and the step's plan. The block stack runs in up to
/// three passes (<see cref="ICachePolicy.SelectSamples"/>): the drafts to verify, the drafts used unchecked, then
/// every sample computed in full (those due a full step and those whose draft was rejected).
/// </summary>
public sealed class SpeCa : ICachePolicy
{
    private enum Plan : byte
    {
        Full,
        Draft,
        Verify,
    }

    private enum Pass : byte
    {
        None,
        Verify,
        Draft,
        Full,
    }

    private readonly SpeCaOptions _options;
    private readonly int _steps, _batch, _half, _units, _rowLength, _factors, _layer, _firstDifference, _sites;
    private readonly float[][] _stack;          // [site·B + row] (O+1, T, D)
    private readonly int[] _count;              // [site·B + row] factors held
    private readonly int[] _fullN;              // [unit] ordinal of the last full step
    private readonly int[] _drafts;             // [unit] drafts since the last full step
    private readonly bool[] _hasFull;           // [unit]
    private readonly Plan[] _plan;              // [unit] this step
    private readonly bool[] _rejected;          // [unit] this step
    private readonly bool[] _dueFull;           // [unit] reject=next: a failed check makes the next step full
    private readonly double[] _error;           // [unit] this step's verification error, NaN if none
    private readonly double[] _sum, _norm;      // [unit] accumulators of the verification
    private readonly SampleOutcome[] _outcome;  // [unit] this step
    private readonly int[] _passRows;           // rows of the current pass, ascending
    private readonly double[] _weights;
    private int _passCount, _stage, _n = -1;
    private double _threshold;
    private Pass _pass;

    internal SpeCa(SpeCaOptions options, CacheRunInfo run)
    {
        _options = options;
        _steps = run.Steps;
        _batch = run.Batch;
        _half = run.CfgScale > 1 && run.Batch % 2 == 0 ? run.Batch / 2 : 0;
        _units = _half > 0 ? _half : _batch;
        _rowLength = checked(run.Tokens * run.Hidden);
        _factors = options.MaxOrder + 1;
        _layer = options.Layer < 0 ? run.Depth - 1 : options.Layer;
        _firstDifference = options.Warmup - 1;
        _sites = FeatureSite.PerBlock * run.Depth;
        _stack = new float[_sites * _batch][];
        for (int k = 0; k < _stack.Length; k++)
        {
            _stack[k] = new float[checked(_factors * _rowLength)];
        }

        _count = new int[_stack.Length];
        _fullN = new int[_units];
        _drafts = new int[_units];
        _hasFull = new bool[_units];
        _plan = new Plan[_units];
        _rejected = new bool[_units];
        _dueFull = new bool[_units];
        _error = new double[_units];
        _sum = new double[_units];
        _norm = new double[_units];
        _outcome = new SampleOutcome[_units];
        _passRows = new int[_batch];
        _weights = new double[_factors];
        CacheBytes = (long)_stack.Length * _factors * _rowLength * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public bool DecidesPerSample => true;

    /// <summary>This step's threshold (after <see cref="BeginStep"/>).</summary>
    public double StepThreshold => _threshold;

    /// <summary>This step's verification error of sample <paramref name="unit"/> (image; a CFG pair counts once); NaN when it was not verified.</summary>
    public double ErrorOf(int unit) => _error[unit];

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("SpeCa", n, _n, _steps);
        if (n == 0)
        {
            Array.Clear(_count);
            Array.Clear(_hasFull);
            Array.Clear(_drafts);
            Array.Clear(_dueFull);
        }

        _n = n;
        _threshold = _options.ThresholdAt(n, _steps);
        for (int u = 0; u < _units; u++)
        {
            bool full = n < _options.Warmup || !_hasFull[u] || _drafts[u] >= _options.MaxDrafts || _dueFull[u];
            _plan[u] = full ? Plan.Full : _drafts[u] >= _options.MinDrafts ? Plan.Verify : Plan.Draft;
            _rejected[u] = false;
            _error[u] = double.NaN;
            _outcome[u] = full ? SampleOutcome.Computed : _plan[u] == Plan.Verify ? SampleOutcome.Accepted : SampleOutcome.Drafted;
        }

        _pass = Pass.None;
    }

    /// <inheritdoc/>
    public int SelectSamples(int pass, Span<float> x, Span<bool> run)
    {
        PolicyChecks.Started(_n);
        if (pass == 0)
        {
            _stage = 0;
        }
        else
        {
            EndPass();
        }

        // Stage 0: drafts to verify; 1: drafts used unchecked; 2: samples computed in full (due, or rejected).
        for (; _stage < 3; _stage++)
        {
            Pass kind = _stage switch { 0 => Pass.Verify, 1 => Pass.Draft, _ => Pass.Full };
            int k = 0;
            for (int row = 0; row < _batch; row++)
            {
                int u = Unit(row);
                bool member = kind switch
                {
                    Pass.Verify => _plan[u] == Plan.Verify,
                    Pass.Draft => _plan[u] == Plan.Draft,
                    _ => _plan[u] == Plan.Full || _rejected[u],
                };
                if (member)
                {
                    run[row] = true;
                    _passRows[k++] = row;
                }
            }

            if (k > 0)
            {
                _stage++;
                _pass = kind;
                _passCount = k;
                return k;
            }
        }

        _pass = Pass.None;
        return 0;
    }

    /// <summary>After a pass: a full pass makes its samples' step full; drafts count once the stack is done.</summary>
    private void EndPass()
    {
        if (_pass == Pass.Full)
        {
            for (int j = 0; j < _passCount; j++)
            {
                int u = Unit(_passRows[j]);
                _fullN[u] = _n;
                _drafts[u] = 0;
                _hasFull[u] = true;
                _dueFull[u] = false;
            }
        }
        else if (_pass is Pass.Draft or Pass.Verify)
        {
            for (int j = 0; j < _passCount; j++)
            {
                int row = _passRows[j], u = Unit(row);
                if (row == u && !_rejected[u])
                {
                    _drafts[u]++;                                                       // once per sample (a CFG pair once)
                }
            }
        }
    }

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        int k = PolicyChecks.SiteIndex(site, _n, _sites);
        if (_pass == Pass.Full)
        {
            return false;
        }

        if (_pass == Pass.None)
        {
            throw new InvalidOperationException("SpeCa decides per sample: the model must run its block stack in the passes SelectSamples picks");
        }

        CheckLength(site, output.Length);
        for (int j = 0; j < _passCount; j++)
        {
            int row = _passRows[j], slot = (k * _batch) + row;
            Span<double> weights = _weights.AsSpan(0, _count[slot]);
            TaylorForecaster.Weights(_n - _fullN[Unit(row)], weights);
            WeightedSum.Combine(_stack[slot], _rowLength, weights, output.Slice(j * _rowLength, _rowLength));
        }

        return true;
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        int k = PolicyChecks.SiteIndex(site, _n, _sites);
        if (_pass != Pass.Full)
        {
            throw new InvalidOperationException($"SpeCa recorded {site} outside a full pass");
        }

        CheckLength(site, output.Length);
        for (int j = 0; j < _passCount; j++)
        {
            int row = _passRows[j], slot = (k * _batch) + row, u = Unit(row);
            int held = _n >= _firstDifference && _hasFull[u] ? _count[slot] : 0;      // TaylorSeer's gate (docs/methods.md §4.1)
            _count[slot] = TaylorForecaster.UpdateFactors(_stack[slot], _rowLength, held, _factors,
                output.Slice(j * _rowLength, _rowLength), _n - _fullN[u]);
        }
    }

    /// <inheritdoc/>
    public bool WantsBlockVerification(int block) => _pass == Pass.Verify && block == _layer;

    /// <inheritdoc/>
    public void VerifyBlock(int block, ReadOnlySpan<float> drafted, ReadOnlySpan<float> computed)
    {
        if (_pass != Pass.Verify || block != _layer || drafted.Length != _passCount * _rowLength || computed.Length != drafted.Length)
        {
            throw new InvalidOperationException($"SpeCa verifies block {_layer} in its verification pass; got block {block} with {drafted.Length} floats");
        }

        bool relative = _options.Metric == "rel-l1";
        Array.Clear(_sum);
        Array.Clear(_norm);
        for (int j = 0; j < _passCount; j++)
        {
            int u = Unit(_passRows[j]);
            ReadOnlySpan<float> d = drafted.Slice(j * _rowLength, _rowLength), c = computed.Slice(j * _rowLength, _rowLength);
            double sum = 0, norm = 0;
            for (int i = 0; i < d.Length; i++)
            {
                double diff = Math.Abs((double)d[i] - c[i]);
                if (relative)
                {
                    sum += diff / (Math.Abs((double)c[i]) + 1e-10);
                }
                else
                {
                    sum += diff * diff;
                    norm += (double)c[i] * c[i];
                }
            }

            _sum[u] += sum;
            _norm[u] += relative ? d.Length : norm;
        }

        for (int j = 0; j < _passCount; j++)
        {
            int u = Unit(_passRows[j]);
            if (_passRows[j] != u)
            {
                continue;                                                              // the second half of a CFG pair
            }

            _error[u] = relative ? _sum[u] / _norm[u] : Math.Sqrt(_sum[u]) / Math.Sqrt(_norm[u]);
            bool failed = !(_error[u] <= _threshold);
            if (_options.Reject == "next")
            {
                _dueFull[u] = failed;                                                  // the draft stays; the next step is full
                _outcome[u] = failed ? SampleOutcome.Failed : SampleOutcome.Accepted;
            }
            else
            {
                _rejected[u] = failed;
                _outcome[u] = failed ? SampleOutcome.Rejected : SampleOutcome.Accepted;
            }
        }
    }

    /// <inheritdoc/>
    public SampleOutcome OutcomeOf(int row) => _n < 0 ? SampleOutcome.Batch : _outcome[Unit(row)];

    private int Unit(int row) => _half > 0 && row >= _half ? row - _half : row;

    private void CheckLength(FeatureSite site, int length)
    {
        if (length != _passCount * _rowLength)
        {
            throw new ArgumentException($"feature of {site} has {length} floats; this pass's ({_passCount}, T, D) has {_passCount * _rowLength}");
        }
    }
}
