using System;
using System.Diagnostics;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Sampling;

/// <summary>What to sample.</summary>
/// <param name="Classes">One image per entry, each the class label to draw.</param>
/// <param name="Steps">Sampling steps S (respaced from 1000).</param>
/// <param name="Sampler">"ddim" or "ddpm".</param>
/// <param name="CfgScale">Classifier-free guidance scale; 1 runs the conditional model alone (no CFG batch).</param>
/// <param name="GuidedChannels">Channels CFG guides; null = all in_channels (standard), 3 = the official DiT sampler.</param>
/// <param name="Eta">DDIM η (0 = deterministic).</param>
/// <param name="Seed">Seed of the Gaussian noise.</param>
/// <param name="Noise">Initial noise (N, C, H, W) instead of seeded noise; null to draw it.</param>
/// <param name="Shadow">Diagnostics: also compute the true features on cached steps and record the forecast error
/// (<see cref="DitRunState.Shadow"/>); the sample is unchanged, the wall clock is not representative.</param>
/// <param name="RecordTokens">Reports: keep, per step and block, the tokens each partial MLP recomputed (token-wise
/// caches; <see cref="StepTelemetry.Tokens"/>). Preallocated before the loop; off, nothing is kept.</param>
public sealed record SampleRequest(int[] Classes, int Steps, string Sampler = "ddim", float CfgScale = 1.5f,
    int? GuidedChannels = null, double Eta = 0.0, int Seed = 0, Tensor? Noise = null, bool Shadow = false, bool RecordTokens = false);

/// <summary>What one sampling step did (n = 0 is the noisiest step).</summary>
/// <param name="N">Sampling ordinal.</param>
/// <param name="Timestep">Original DDPM timestep fed to the model.</param>
/// <param name="Computed">True when every block ran in full.</param>
/// <param name="Flops">FLOPs of this step's forward (paper convention, whole CFG batch).</param>
/// <param name="ModulesComputed">Attention/MLP modules computed.</param>
/// <param name="ModulesForecast">Modules the cache stood in for.</param>
/// <param name="BlocksSkipped">True when the cache replaced the whole block stack.</param>
/// <param name="ModulesPartial">MLP modules recomputed on some tokens only (token-wise caches).</param>
/// <param name="BlocksSkippedCount">Blocks the cache skipped as a range (the depth when the whole stack was).</param>
public readonly record struct StepRecord(int N, int Timestep, bool Computed, double Flops, int ModulesComputed,
    int ModulesForecast, bool BlocksSkipped, int ModulesPartial = 0, int BlocksSkippedCount = 0);

/// <summary>The outcome of one sampling run.</summary>
/// <param name="Sample">Final sample (N, C, H, W), before any clamping.</param>
/// <param name="Steps">Per-step records in sampling order.</param>
/// <param name="Flops">FLOPs of the run (paper convention, docs/methods.md §9.1).</param>
/// <param name="FullFlops">FLOPs of the same run with every block computed.</param>
/// <param name="Seconds">Wall clock of the sampling loop.</param>
/// <param name="CacheBytes">Feature storage the cache policy held.</param>
/// <param name="Sampler">Sampler name.</param>
/// <param name="Cache">Cache spec.</param>
/// <param name="Telemetry">Per step and site: computed, forecast or skipped, and with shadow the forecast errors.</param>
public sealed record SampleResult(Tensor Sample, StepRecord[] Steps, double Flops, double FullFlops, double Seconds,
    long CacheBytes, string Sampler, string Cache, StepTelemetry Telemetry);

/// <summary>
/// Per-step, per-site telemetry of a run, allocated before the loop. Sites are indexed block·2 + (0 attention,
/// 1 MLP), the order of <see cref="DitRunState.LastSites"/>.
/// </summary>
public sealed class StepTelemetry
{
    /// <summary>
    /// Room for <paramref name="steps"/> steps of <paramref name="sites"/> sites; with <paramref name="tokenRows"/> &gt; 0,
    /// also for the picked tokens of that many batch rows of <paramref name="tokens"/> tokens per step and block.
    /// </summary>
    /// <param name="steps">Steps of the run.</param>
    /// <param name="sites">Sites per forward (2·depth).</param>
    /// <param name="shadow">Whether shadow errors are kept.</param>
    /// <param name="tokenRows">Batch rows whose recomputed tokens are kept; 0 for none.</param>
    /// <param name="tokens">Tokens per image.</param>
    /// <param name="sampleRows">Batch rows whose per-sample outcome is kept (a policy that decides per sample); 0 for none.</param>
    public StepTelemetry(int steps, int sites, bool shadow, int tokenRows = 0, int tokens = 0, int sampleRows = 0)
    {
        Sites = new SiteOutcome[steps][];
        for (int i = 0; i < steps; i++)
        {
            Sites[i] = new SiteOutcome[sites];
        }

        if (shadow)
        {
            ShadowErrors = new double[steps][];
            for (int i = 0; i < steps; i++)
            {
                ShadowErrors[i] = new double[sites];
            }

            ShadowBlocksErrors = new double[steps];
        }

        if (sampleRows > 0)
        {
            Samples = new SampleOutcome[steps][];
            for (int i = 0; i < steps; i++)
            {
                Samples[i] = new SampleOutcome[sampleRows];
            }
        }

        if (tokenRows > 0)
        {
            int depth = sites / FeatureSite.PerBlock;
            TokenRows = tokenRows;
            TokenCounts = new int[steps][];
            Tokens = new int[steps][];
            for (int i = 0; i < steps; i++)
            {
                TokenCounts[i] = new int[depth];
                Tokens[i] = new int[depth * tokenRows * tokens];
            }
        }
    }

    /// <summary>[step][site]: what the forward did there.</summary>
    public SiteOutcome[][] Sites { get; }

    /// <summary>[step][site]: relative L2 of the forecast against the true module output; NaN where computed. Null without shadow.</summary>
    public double[][]? ShadowErrors { get; }

    /// <summary>[step]: relative L2 of a forecast block-stack output; NaN where the blocks ran. Null without shadow.</summary>
    public double[]? ShadowBlocksErrors { get; }

    /// <summary>
    /// [step][batch row]: what the step was for each row, from a policy that decides per sample (2·N rows with CFG:
    /// N cond rows, then N uncond rows, each pair alike). Null for whole-batch policies.
    /// </summary>
    public SampleOutcome[][]? Samples { get; }

    /// <summary>
    /// Full steps per sample row, summed over the rows: steps where the row ran every block (<see cref="SampleOutcome.Computed"/>,
    /// or <see cref="SampleOutcome.Rejected"/> and recomputed); null when the policy decides for the whole batch.
    /// </summary>
    public long? FullStepsOfAllRows()
    {
        if (Samples is null)
        {
            return null;
        }

        long full = 0;
        foreach (SampleOutcome[] step in Samples)
        {
            foreach (SampleOutcome outcome in step)
            {
                full += outcome is SampleOutcome.Computed or SampleOutcome.Rejected ? 1 : 0;
            }
        }

        return full;
    }

    /// <summary>Sample rows per step in <see cref="Samples"/> (0 when the policy decides for the whole batch).</summary>
    public int SampleRows => Samples is { Length: > 0 } rows ? rows[0].Length : 0;

    /// <summary>One letter per batch row: C computed, D drafted without a check, A accepted after the check, R rejected and computed, X failed the check but used (the next step is full), - whole batch.</summary>
    public static string Letters(SampleOutcome[] rows) => string.Create(rows.Length, rows, static (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
        {
            span[i] = src[i] switch
            {
                SampleOutcome.Computed => 'C',
                SampleOutcome.Drafted => 'D',
                SampleOutcome.Accepted => 'A',
                SampleOutcome.Rejected => 'R',
                SampleOutcome.Failed => 'X',
                _ => '-',
            };
        }
    });

    /// <summary>Batch rows of the forward whose tokens are recorded (2·N with CFG: N cond rows, then N uncond rows); 0 when not recorded.</summary>
    public int TokenRows { get; }

    /// <summary>[step][block]: tokens per batch row the block's MLP recomputed; −1 where it was not partial. Null unless recorded.</summary>
    public int[][]? TokenCounts { get; }

    /// <summary>
    /// [step] (depth, B, T): for block l with count k ≥ 0, entries [l·B·T + b·k, … + k) are the tokens batch row b
    /// recomputed, highest score first. Null unless recorded.
    /// </summary>
    public int[][]? Tokens { get; }

    /// <summary>One letter per site: C computed, F forecast, P computed on some tokens, S skipped with the block stack.</summary>
    public static string Letters(SiteOutcome[] sites) => string.Create(sites.Length, sites, static (span, src) =>
    {
        for (int i = 0; i < src.Length; i++)
        {
            span[i] = src[i] switch
            {
                SiteOutcome.Computed => 'C',
                SiteOutcome.Forecast => 'F',
                SiteOutcome.Partial => 'P',
                _ => 'S',
            };
        }
    });

    internal void Capture(int step, DitRunState state, ICachePolicy policy)
    {
        state.LastSites.CopyTo(Sites[step]);
        if (Samples is not null)
        {
            SampleOutcome[] rows = Samples[step];
            for (int b = 0; b < rows.Length; b++)
            {
                rows[b] = policy.OutcomeOf(b);
            }
        }

        if (ShadowErrors is not null && ShadowBlocksErrors is not null)
        {
            state.LastShadowErrors.CopyTo(ShadowErrors[step]);
            ShadowBlocksErrors[step] = state.LastShadowBlocksError;
        }

        if (TokenCounts is not null && Tokens is not null)
        {
            state.LastTokenCounts.CopyTo(TokenCounts[step]);
            state.LastTokens.CopyTo(Tokens[step]);
        }
    }
}

/// <summary>Sees the model output of step <paramref name="n"/> (N, out, H, W; guided with CFG) before the scheduler uses it.</summary>
public delegate void StepObserver(int n, ReadOnlySpan<float> modelOutput);

/// <summary>
/// The explicit denoising loop (DiT <c>sample.py</c> + <c>p_sample_loop</c>/<c>ddim_sample_loop</c>): noise, then for
/// n = 0 … S−1: the cache policy starts the step, the model runs (as a CFG batch when the scale is above 1), the
/// scheduler updates the sample. Buffers are allocated before the loop; the loop itself allocates nothing.
/// </summary>
public sealed class DiffusionPipeline
{
    private readonly DitModel _model;
    private readonly CalibrationFile? _calibration;

    /// <summary>
    /// A pipeline over <paramref name="model"/>; <paramref name="calibration"/> is the model's calibration file, handed
    /// to every cache policy it builds (TeaCache, SmoothCache and MagCache need it).
    /// </summary>
    public DiffusionPipeline(DitModel model, CalibrationFile? calibration = null)
    {
        _model = model;
        _calibration = calibration;
    }

    /// <summary>The model.</summary>
    public DitModel Model => _model;

    /// <summary>The calibration handed to cache policies, or null.</summary>
    public CalibrationFile? Calibration => _calibration;

    /// <summary>The one-line error of a sample that stopped being finite at step <paramref name="step"/>.</summary>
    private static DitCacheException Diverged(float[] x, int n, DitConfig c, int step, int steps, int t, string spec)
    {
        string where = new Tensor(x, n, c.InChannels, c.InputSize, c.InputSize).FirstNonFinite()!;
        return new DitCacheException(
            $"sampling diverged at step {step} of {steps} (timestep {t}, cache {spec}): the sample holds {where}; check the model's weights and the sampler settings (--eta)"
            + (spec == "none" ? "" : ", and run with --cache none to see whether the accelerator caused it"));
    }

    /// <summary>Builds the scheduler named <paramref name="sampler"/>.</summary>
    /// <exception cref="DitCacheException">Unknown sampler (exit code 2).</exception>
    public static IScheduler CreateScheduler(string sampler, int steps, double eta) => SchedulerRegistry.Create(sampler, steps, eta);

    /// <summary>
    /// Samples one image per class. <paramref name="stepNoise"/> supplies the noise of stochastic steps (and the
    /// initial noise when the request has none); by default a <see cref="GaussianNoise"/> of the request's seed.
    /// <paramref name="progress"/> receives (steps done, steps total); <paramref name="observe"/> sees each step's model
    /// output.
    /// </summary>
    /// <exception cref="ArgumentException">Bad classes, steps, CFG scale, guided channels or noise shape.</exception>
    public SampleResult Run(SampleRequest request, ICacheOptions cache, INoiseSource? stepNoise = null, Action<int, int>? progress = null,
        StepObserver? observe = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        return Run(request, run => cache.Build(run), cache.Spec, stepNoise, progress, observe);
    }

    /// <summary>
    /// <c>--cache-budget</c>: the first configuration of <paramref name="cache"/>'s coarsening chain whose feature storage
    /// for runs of <paramref name="images"/> images (twice the rows with guidance) fits <paramref name="budget"/> bytes
    /// (<see cref="CacheBudget.Fit"/>); nothing is allocated.
    /// </summary>
    /// <exception cref="DitCacheException">Nothing in the chain fits.</exception>
    public BudgetChoice FitBudget(ICacheOptions cache, int images, int steps, string sampler, float cfgScale, long budget)
    {
        ArgumentNullException.ThrowIfNull(cache);
        DitConfig c = _model.Config;
        bool useCfg = cfgScale > 1f;
        var run = new CacheRunInfo(steps, CreateScheduler(sampler, steps, 0.0).Diffusion.SamplingTimesteps, useCfg ? 2 * images : images,
            c.Tokens, c.Hidden, c.Depth, _calibration, sampler, useCfg ? cfgScale : 1.0);
        return CacheBudget.Fit(cache, run, budget);
    }

    /// <summary>
    /// As <see cref="Run(SampleRequest, ICacheOptions, INoiseSource?, Action{int, int}?, StepObserver?)"/> with a policy
    /// made by <paramref name="build"/> for the run (e.g. a <see cref="CalibrationRecorder"/>); <paramref name="spec"/>
    /// names it in the result.
    /// </summary>
    public SampleResult Run(SampleRequest request, Func<CacheRunInfo, ICachePolicy> build, string spec, INoiseSource? stepNoise = null,
        Action<int, int>? progress = null, StepObserver? observe = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(build);
        DitConfig c = _model.Config;
        int n = request.Classes.Length, steps = request.Steps;
        int image = c.InChannels * c.InputSize * c.InputSize, outImage = c.OutChannels * c.InputSize * c.InputSize;
        Validate(request, c);

        IScheduler scheduler = CreateScheduler(request.Sampler, steps, request.Eta);
        GaussianDiffusion diffusion = scheduler.Diffusion;
        bool useCfg = request.CfgScale > 1f;
        int batch = useCfg ? 2 * n : n;
        int guided = request.GuidedChannels ?? c.InChannels;
        DitRunState state = _model.CreateState(batch);
        state.Shadow = request.Shadow;
        state.RecordTokens = request.RecordTokens;
        ICachePolicy policy = build(new CacheRunInfo(steps, diffusion.SamplingTimesteps, batch, c.Tokens, c.Hidden, c.Depth,
            _calibration, request.Sampler, useCfg ? request.CfgScale : 1.0));
        state.SamplePasses = policy.DecidesPerSample;                             // per-sample buffers before the loop
        var telemetry = new StepTelemetry(steps, FeatureSite.PerBlock * c.Depth, request.Shadow, request.RecordTokens ? batch : 0, c.Tokens,
            policy.DecidesPerSample ? batch : 0);
        INoiseSource noiseSource = stepNoise ?? new GaussianNoise(request.Seed);

        float[] x = new float[n * image];
        if (request.Noise is { } given)
        {
            given.Data.CopyTo(x, 0);
        }
        else
        {
            noiseSource.Fill(x);
        }

        float[] modelOut = new float[n * outImage];
        float[] noise = new float[n * image];
        float[] timesteps = new float[n];
        var records = new StepRecord[steps];
        double flops = 0;

        var clock = Stopwatch.StartNew();
        PrepareConditioning(request, diffusion, useCfg, state);                  // timed: part of the run
        for (int step = 0; step < steps; step++)
        {
            int index = steps - 1 - step;                       // respaced index, noisiest first
            int t = diffusion.TimestepMap[index];               // the model sees the original timestep
            policy.BeginStep(step, t);
            if (useCfg)
            {
                _model.ForwardWithCfg(x, t, request.Classes, request.CfgScale, guided, state, policy, modelOut);
            }
            else
            {
                timesteps.AsSpan().Fill(t);
                _model.Forward(x, timesteps, request.Classes, state, policy, modelOut);
            }

            observe?.Invoke(step, modelOut);
            if (scheduler.UsesNoise(index))
            {
                noiseSource.Fill(noise);
            }

            scheduler.Step(index, modelOut, x, n, noise);
            if (Kernels.IndexOfNonFinite(x) >= 0)                                     // one vectorised pass per step
            {
                throw Diverged(x, n, c, step, steps, t, spec);
            }

            records[step] = new StepRecord(step, t, state.LastFullyComputed, state.LastFlops, state.LastModulesComputed,
                state.LastModulesForecast, state.LastBlocksSkipped, state.LastModulesPartial, state.LastBlocksSkippedCount);
            telemetry.Capture(step, state, policy);
            flops += state.LastFlops;
            progress?.Invoke(step + 1, steps);
        }

        clock.Stop();
        double full = steps * DitFlops.Forward(c, batch);
        return new SampleResult(new Tensor(x, n, c.InChannels, c.InputSize, c.InputSize), records, flops, full,
            clock.Elapsed.TotalSeconds, policy.CacheBytes, scheduler.Name, spec, telemetry);
    }

    /// <summary>
    /// The conditioning of every (timestep, label) pair of the run, ahead of the loop (<see cref="DitModel.PrepareConditioning"/>):
    /// the step's model timesteps × the requested classes, and the null class with CFG.
    /// </summary>
    private void PrepareConditioning(SampleRequest request, GaussianDiffusion diffusion, bool useCfg, DitRunState state)
    {
        int steps = request.Steps;
        var timesteps = new float[steps];
        for (int step = 0; step < steps; step++)
        {
            timesteps[step] = diffusion.TimestepMap[steps - 1 - step];
        }

        int[] labels = request.Classes.Distinct().ToArray();
        if (useCfg && !labels.Contains(_model.Config.NullClass))
        {
            labels = [.. labels, _model.Config.NullClass];
        }

        _model.PrepareConditioning(timesteps, labels, state);
    }

    private static void Validate(SampleRequest request, DitConfig c)
    {
        if (request.Classes.Length == 0)
        {
            throw new ArgumentException("at least one class is needed", nameof(request));
        }

        int bad = request.Classes.FirstOrDefault(y => y < 0 || y >= c.NumClasses, -1);
        if (request.Classes.Any(y => y < 0 || y >= c.NumClasses))
        {
            throw new ArgumentException($"class {bad} is out of range: this model has classes 0..{c.NumClasses - 1}", nameof(request));
        }

        if (request.Steps < 1 || request.Steps > 1000)
        {
            throw new ArgumentException($"steps {request.Steps} must be in [1, 1000]", nameof(request));
        }

        if (!(request.CfgScale >= 1f) || !float.IsFinite(request.CfgScale))
        {
            throw new ArgumentException($"cfg scale {request.CfgScale} must be a finite number >= 1 (1 disables guidance)", nameof(request));
        }

        if (request.GuidedChannels is int g && (g < 1 || g > c.InChannels))
        {
            throw new ArgumentException($"guided channels {g} must be in [1, {c.InChannels}]", nameof(request));
        }

        if (request.Noise is { } noise && !noise.HasShape(request.Classes.Length, c.InChannels, c.InputSize, c.InputSize))
        {
            throw new ArgumentException(
                $"noise has shape {noise.ShapeText}; expected [{request.Classes.Length}, {c.InChannels}, {c.InputSize}, {c.InputSize}] (N = number of classes)",
                nameof(request));
        }

        if (request.Noise?.FirstNonFinite() is { } where)
        {
            throw new DitCacheException($"the initial noise holds {where}; it must be finite (standard normal samples)");
        }
    }
}
