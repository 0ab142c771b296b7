using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// DBCache, Dual Block Cache (vipshop/cache-dit, <c>cache_contexts/cache_manager.py</c> and <c>cache_context.py</c>;
/// docs/methods.md §5.6), the generalisation of First-Block-Cache. Every step runs the first F blocks; their
/// residual r = h_F − h_0 (output of block F − 1 minus the stack input) is compared with the r stored at the last
/// computed step: <c>diff = mean|r_prev − r| / mean|r_prev|</c>. When <c>diff &lt; t</c> (and no guard forbids it)
/// the middle blocks F … depth − B − 1 are skipped, <c>h ← h_F + R</c> with R the middle blocks' residual of the last
/// computed step; otherwise they run and r and R are stored. The last B blocks always run. Spec:
/// <c>dbcache:f=8,b=0,t=0.08</c>.
/// </summary>
/// <remarks>
/// Guards, in cache-dit's order: a warm-up (steps 0 … warmup − 1 compute), a cap on cached steps (<c>maxcached</c>),
/// a cap on the run of cached steps (<c>maxrun</c>), then the threshold (t ≤ 0 never caches, t ≥ 1 always may). The
/// run counter follows cache-dit's <c>add_cached_step</c> exactly: a cached step right after a cached step adds 1 (2
/// when the counter is 0), a cached step after a gap leaves it, and it returns to 0 only when the cap is hit (that
/// step then computes). With CFG one decision covers both halves (the diff is over the whole [cond; uncond] batch).
/// </remarks>
/// <param name="Front">F, knob <c>f</c>: blocks always computed first, whose residual decides (cache-dit default 8).</param>
/// <param name="Back">B, knob <c>b</c>: blocks always computed last, after the cached middle (default 0).</param>
/// <param name="Threshold">t, knob <c>t</c>: residual_diff_threshold (default 0.08).</param>
/// <param name="Warmup">Knob <c>warmup</c>: max_warmup_steps, steps that always compute (default 8).</param>
/// <param name="MaxCached">Knob <c>maxcached</c>: max_cached_steps per run, −1 unlimited (default).</param>
/// <param name="MaxRun">Knob <c>maxrun</c>: max_continuous_cached_steps, −1 unlimited (default).</param>
public sealed record DBCacheOptions(int Front = 8, int Back = 0, double Threshold = 0.08, int Warmup = 8, int MaxCached = -1,
    int MaxRun = -1) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "dbcache";

    /// <inheritdoc/>
    public string Spec => $"dbcache:f={Front},b={Back},t={Threshold.ToString(System.Globalization.CultureInfo.InvariantCulture)}" + GuardSpec(Warmup, MaxCached, MaxRun);

    internal static string GuardSpec(int warmup, int maxCached, int maxRun) =>
        (warmup != 8 ? $",warmup={warmup}" : "") + (maxCached != -1 ? $",maxcached={maxCached}" : "") + (maxRun != -1 ? $",maxrun={maxRun}" : "");

    /// <summary>Parses <c>dbcache:f=F,b=B,t=T[,warmup=W][,maxcached=M][,maxrun=R]</c>; unknown knobs are errors.</summary>
    public static DBCacheOptions FromSpec(CacheSpec spec)
    {
        var options = new DBCacheOptions(spec.GetInt("f", 8), spec.GetInt("b", 0), spec.GetDouble("t", 0.08),
            spec.GetInt("warmup", 8), spec.GetInt("maxcached", -1), spec.GetInt("maxrun", -1));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        Check("dbcache", Back, Threshold, Warmup, MaxCached, MaxRun);
        if (Front < 1)
        {
            throw new DitCacheException($"--cache dbcache: f={Front}; f (front blocks always computed) must be at least 1", exitCode: 2);
        }
    }

    internal static void Check(string name, int back, double threshold, int warmup, int maxCached, int maxRun)
    {
        if (back < 0)
        {
            throw new DitCacheException($"--cache {name}: b={back}; b (back blocks always computed) must be 0 or more", exitCode: 2);
        }

        if (!double.IsFinite(threshold) || threshold < 0)
        {
            throw new DitCacheException($"--cache {name}: t={threshold}; t (residual diff threshold) must be 0 or more (0 never caches)", exitCode: 2);
        }

        if (warmup < 0)
        {
            throw new DitCacheException($"--cache {name}: warmup={warmup}; warmup (steps that always compute) must be 0 or more", exitCode: 2);
        }

        if (maxCached < -1 || maxRun < -1)
        {
            throw new DitCacheException($"--cache {name}: maxcached={maxCached}, maxrun={maxRun}; each must be −1 (unlimited) or 0 or more", exitCode: 2);
        }
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new DBCache(Front, Back, Threshold, Warmup, MaxCached, MaxRun, run, "dbcache");
    }
}

/// <summary>
/// The DBCache policy of one run (also FBCache's, with F = 1 and B = 0): the stack input, the stored front residual,
/// the middle residual and the front output, each (B, T, D), allocated at build.
/// </summary>
public sealed class DBCache : ICachePolicy
{
    private readonly int _front, _middleEnd, _steps, _warmup, _maxCached, _maxRun;
    private readonly double _threshold;
    private readonly float[] _input;       // h_0: the stack input of this step
    private readonly float[] _residual;    // r of this step (h_F − h_0)
    private readonly float[] _previous;    // r of the last computed step
    private readonly float[] _frontOut;    // h_F of this step, kept while the middle runs
    private readonly float[] _middle;      // R: middle blocks' output − input at the last computed step
    private readonly string _name;
    private int _n = -1, _cachedSteps, _lastCached = -1, _run;
    private bool _hasPrevious, _computing;

    internal DBCache(int front, int back, double threshold, int warmup, int maxCached, int maxRun, CacheRunInfo run, string name)
    {
        if (front + back >= run.Depth)
        {
            throw new DitCacheException(
                $"--cache {name}: f={front} front and b={back} back blocks leave no middle block to cache in a model of {run.Depth} blocks; " +
                $"choose f + b ≤ {run.Depth - 1}", exitCode: 2);
        }

        _name = name;
        _front = front;
        _middleEnd = run.Depth - back;
        _steps = run.Steps;
        _threshold = threshold;
        _warmup = warmup;
        _maxCached = maxCached;
        _maxRun = maxRun;
        int length = run.FeatureLength;
        _input = new float[length];
        _residual = new float[length];
        _previous = new float[length];
        _frontOut = new float[length];
        _middle = new float[length];
        CacheBytes = 5L * length * sizeof(float);
    }

    /// <summary>The relative L1 diff of the last decision (NaN when none was computed this step); for tests and reports.</summary>
    public double LastDiff { get; private set; } = double.NaN;

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep(_name, n, _n, _steps);

        if (n == 0)
        {
            _hasPrevious = false;
            _cachedSteps = 0;
            _lastCached = -1;
            _run = 0;
        }

        _n = n;
        _computing = false;
        LastDiff = double.NaN;
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        PolicyChecks.Started(_n);

        if (from == 0)
        {
            x.CopyTo(_input);                                                // h_0
            return 0;
        }

        if (from != _front)
        {
            return from;
        }

        Residuals.Difference(x, _input, _residual);                          // r = h_F − h_0
        if (CanCache())
        {
            Residuals.Add(x, _middle);                                       // h ← h_F + R
            AddCachedStep();
            return _middleEnd;
        }

        _residual.CopyTo(_previous, 0);
        _hasPrevious = true;
        x.CopyTo(_frontOut);
        _computing = true;
        return from;
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (_computing && block == _middleEnd - 1)
        {
            Residuals.Difference(output, _frontOut, _middle);                // R = h_(depth−B) − h_F
        }
    }

    // cache-dit's can_cache: warm-up, max cached steps, max continuous cached steps, then the threshold.
    private bool CanCache()
    {
        if (_n < _warmup)
        {
            return false;
        }

        if (_maxCached >= 0 && _cachedSteps >= _maxCached)
        {
            return false;
        }

        if (_maxRun >= 0 && _run >= _maxRun)
        {
            _run = 0;
            return false;
        }

        if (_threshold <= 0 || !_hasPrevious)
        {
            return false;
        }

        LastDiff = RelativeError.L1(_residual, _previous);
        return _threshold >= 1 || LastDiff < _threshold;
    }

    // cache-dit's add_cached_step, counter quirks included (see DBCacheOptions remarks).
    private void AddCachedStep()
    {
        if (_lastCached >= 0)
        {
            if (_n - _lastCached == 1)
            {
                _run += _run == 0 ? 2 : 1;
            }
        }
        else
        {
            _run++;
        }

        _lastCached = _n;
        _cachedSteps++;
    }
}
