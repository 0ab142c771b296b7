using System;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache;

/// <summary>
/// A DiT loaded for sampling, the library face of <c>ditcache sample</c>: load a model once, then draw images with any
/// accelerator, sampler and seed.
/// <code>
/// var pipeline = DitPipeline.Load();                     // the embedded Fashion-MNIST DiT; or a file or diffusers folder
/// var options = new SamplingOptions { Classes = [0, 1, 2, 3], Steps = 20, Accelerator = "foca:n=3" };
/// SampledImages images = pipeline.Sample(options, progress, cancellationToken);
/// File.WriteAllBytes("samples.png", images.ToPng());
/// </code>
/// </summary>
/// <remarks>
/// <para><b>Threads.</b> One pipeline runs one <see cref="Sample"/> at a time: calls made from several threads at once
/// on the same instance wait for each other and then run in turn (its model's buffers and the VAE's workspace are
/// reused from run to run). Separate pipelines share nothing but the process's worker threads and run in parallel,
/// each giving bit for bit the images it gives alone: every run's noise comes from its own seed, and the managed GEMM
/// never splits a sum across threads (with <c>openblas</c> the last bits may depend on the threads it gets). Each
/// pipeline holds its own copy of the weights.</para>
/// <para><b>Cancellation.</b> The token is checked before the run and between steps (and between the images a VAE
/// decodes); a cancelled run throws <see cref="OperationCanceledException"/>, returns nothing and leaves the pipeline
/// ready for the next run. <see cref="Sample"/> writes no file; <see cref="SampledImages.ToPng"/> returns bytes.</para>
/// <para><b>Errors.</b> Bad options throw <see cref="ArgumentException"/> whose one-line message names the option, the value and what is expected; a model, VAE or calibration file that cannot be read
/// throws <see cref="DitCacheException"/> naming the file; a missing model path
/// <see cref="FileNotFoundException"/>.</para>
/// </remarks>
public sealed class DitPipeline
{
    private readonly Lock _gate = new();
    private readonly DiffusionPipeline _pipeline;
    private readonly VaeDecoder? _vae;

    private DitPipeline(DiffusionPipeline pipeline, VaeDecoder? vae, string source, string? vaeSource)
    {
        _pipeline = pipeline;
        _vae = vae;
        Source = source;
        Vae = vaeSource;
    }

    /// <summary>Where the model came from: the path given, or <c>embedded:fmnist-dit.safetensors</c>.</summary>
    public string Source { get; }

    /// <summary>The VAE that decodes the samples into images, or null when the samples are the images.</summary>
    public string? Vae { get; }

    /// <summary>The DiT's shape: classes (<see cref="DitConfig.NumClasses"/>), input side and channels, depth, width.</summary>
    public DitConfig Config => _pipeline.Model.Config;

    /// <summary>
    /// Loads a DiT: <paramref name="model"/> is a checkpoint (safetensors F32/F16/BF16 or a PyTorch <c>.pt</c>, as
    /// facebookresearch/DiT publishes them), a diffusers folder (<c>model_index.json</c>, <c>transformer/</c>,
    /// <c>vae/</c>, as downloading <c>facebook/DiT-XL-2-256</c> gives), or null for the embedded Fashion-MNIST DiT
    /// (28x28 grayscale, 10 classes; models/README.md). A calibration file beside the model
    /// (<c>NAME.calibration.json</c>, written by <c>ditcache calibrate</c>) is read when an accelerator needs it.
    /// </summary>
    /// <exception cref="FileNotFoundException"><paramref name="model"/> is neither a file nor a folder.</exception>
    /// <exception cref="ArgumentException">An option of <paramref name="options"/> is out of range or unknown.</exception>
    /// <exception cref="DitCacheException">The model or VAE cannot be read (the message names the file and the problem).</exception>
    public static DitPipeline Load(string? model = null, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        if (model is not null && !File.Exists(model) && !Directory.Exists(model))
        {
            throw new FileNotFoundException(
                $"model '{model}': no such file or folder; give a DiT checkpoint (.safetensors or .pt), a diffusers folder, or null for the embedded model",
                model);
        }

        if (options.Threads is < 1 or > MaxThreads)
        {
            throw new ArgumentException(
                $"PipelineOptions.Threads {options.Threads} is out of range; give 1..{MaxThreads} (default: every core)", nameof(options));
        }

        if (options.Vae is { } vaePath && !File.Exists(vaePath) && !Directory.Exists(vaePath))
        {
            throw new FileNotFoundException(
                $"PipelineOptions.Vae '{vaePath}': no such file or folder; give a diffusers vae/ folder or a VAE weights file", vaePath);
        }

        WeightPrecision precision = Wrap(() => WeightPrecisions.Parse(options.Weights ?? "", "PipelineOptions.Weights"), nameof(options));
        IGemm gemm = CreateGemm(options, precision);
        DitWeights weights = DefaultModel.LoadWeights(model, precision: precision);
        DitConfig c = weights.Config;
        string source = model ?? "embedded:" + DefaultModel.ResourceName;
        (VaeDecoder? vae, string? vaeSource) = LoadVae(model, options, c, source, gemm);
        CalibrationFile calibration = DefaultModel.LoadCalibration(model);
        var pipeline = new DiffusionPipeline(new DitModel(weights, gemm, options.Threads), calibration);
        return new DitPipeline(pipeline, vae, source, vaeSource);
    }

    /// <summary>
    /// Draws one image per class of <paramref name="options"/>. <paramref name="progress"/> is told after every
    /// sampling step, on the sampling thread (a <see cref="Progress{T}"/> passes it on to its own context);
    /// <paramref name="cancellationToken"/> is checked between steps. Thread safety: see the class remarks.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range, unknown or inconsistent (the message names it).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="DitCacheException">The sample stopped being finite, or an accelerator's calibration is missing
    /// (the message says which step, or which file and the command that writes it).</exception>
    public SampledImages Sample(SamplingOptions options, IProgress<SamplingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        cancellationToken.ThrowIfCancellationRequested();
        (SampleRequest request, ICacheOptions cache) = ToRequest(options, Config);

        // Allocated once per run: the step loop itself calls it without allocating.
        Action<int, int> afterStep = (done, total) =>
        {
            progress?.Report(new SamplingProgress(done, total));
            cancellationToken.ThrowIfCancellationRequested();
        };

        lock (_gate)
        {
            cancellationToken.ThrowIfCancellationRequested();
            SampleResult result = _pipeline.Run(request, cache, progress: afterStep);
            Tensor? images = _vae is null ? (Config.InChannels is 1 or 3 ? result.Sample : null) : Decode(result.Sample, cancellationToken);
            return new SampledImages(result.Sample, images, request.Classes.ToArray(), result.Cache, result.Flops, result.FullFlops,
                result.Steps.Count(s => s.Computed), result.Seconds);
        }
    }

    /// <summary>
    /// <see cref="Sample"/> on a thread-pool thread, for callers that must not block (a UI thread).
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range, unknown or inconsistent (the message names it).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SampledImages> SampleAsync(SamplingOptions options, IProgress<SamplingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Task.Run(() => Sample(options, progress, cancellationToken), cancellationToken);
    }

    /// <summary>The most threads <see cref="PipelineOptions.Threads"/> accepts.</summary>
    public const int MaxThreads = 1024;

    private Tensor Decode(Tensor samples, CancellationToken cancellationToken)
    {
        VaeDecoder vae = _vae!;
        int n = samples.Dim(0), h = samples.Dim(2), w = samples.Dim(3), f = vae.Config.UpsampleFactor;
        var images = Tensor.Zeros(n, vae.Config.OutChannels, h * f, w * f);
        int latentSize = samples.Dim(1) * h * w, imageSize = vae.Config.OutChannels * h * f * w * f;
        for (int i = 0; i < n; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            vae.DecodeOne(samples.Data.AsSpan(i * latentSize, latentSize), images.Data.AsSpan(i * imageSize, imageSize), h, w);
        }

        return images;
    }

    private static (SampleRequest Request, ICacheOptions Cache) ToRequest(SamplingOptions options, DitConfig c)
    {
        if (options.Classes is null || options.Classes.Count == 0)
        {
            throw new ArgumentException("SamplingOptions.Classes is empty; give at least one class label, e.g. [0, 1, 2, 3]", nameof(options));
        }

        int[] classes = [.. options.Classes];
        int bad = Array.FindIndex(classes, y => y < 0 || y >= c.NumClasses);
        if (bad >= 0)
        {
            throw new ArgumentException(
                $"SamplingOptions.Classes[{bad}] = {classes[bad]} is out of range; this model has classes 0..{c.NumClasses - 1}", nameof(options));
        }

        if (options.Steps is < 1 or > 1000)
        {
            throw new ArgumentException($"SamplingOptions.Steps = {options.Steps} is out of range; give 1..1000 (respaced from the 1,000 training steps)", nameof(options));
        }

        if (options.Sampler is null || !SchedulerRegistry.IsKnown(options.Sampler))
        {
            throw new ArgumentException($"SamplingOptions.Sampler '{options.Sampler}' is unknown; choose {SchedulerRegistry.Choices}", nameof(options));
        }

        if (!float.IsFinite(options.Cfg) || options.Cfg < 1f)
        {
            throw new ArgumentException($"SamplingOptions.Cfg = {options.Cfg} is out of range; give a finite scale of at least 1 (1 disables guidance)", nameof(options));
        }

        if (options.CfgChannels is int g && (g < 1 || g > c.InChannels))
        {
            throw new ArgumentException($"SamplingOptions.CfgChannels = {g} is out of range; this model has {c.InChannels} input channels (give 1..{c.InChannels}, or null for all)", nameof(options));
        }

        if (!double.IsFinite(options.Eta) || options.Eta < 0)
        {
            throw new ArgumentException($"SamplingOptions.Eta = {options.Eta} is out of range; give a finite value of at least 0 (0 is deterministic)", nameof(options));
        }

        if (options.Eta != 0 && !SchedulerRegistry.UsesEta(options.Sampler))
        {
            throw new ArgumentException($"SamplingOptions.Eta = {options.Eta} applies to the ddim sampler only; set Eta to 0 or Sampler to \"ddim\"", nameof(options));
        }

        if (options.Noise is { } noise)
        {
            if (!noise.HasShape(classes.Length, c.InChannels, c.InputSize, c.InputSize))
            {
                throw new ArgumentException(
                    $"SamplingOptions.Noise has shape {noise.ShapeText}; expected [{classes.Length}, {c.InChannels}, {c.InputSize}, {c.InputSize}] (N = number of classes, then the model's channels and input side)", nameof(options));
            }

            if (noise.FirstNonFinite() is { } where)
            {
                throw new ArgumentException($"SamplingOptions.Noise holds {where}; the initial noise must be finite (standard normal samples)", nameof(options));
            }
        }

        ICacheOptions cache;
        if (options.AcceleratorOptions is { } given)
        {
            if (options.Accelerator is not null)
            {
                throw new ArgumentException(
                    $"SamplingOptions.Accelerator '{options.Accelerator}' and SamplingOptions.AcceleratorOptions ({given.Spec}) are both set; give one of the two", nameof(options));
            }

            Wrap(() => { given.Validate(); return 0; }, nameof(options), $"SamplingOptions.AcceleratorOptions ({given.GetType().Name}): ");
            cache = given;
        }
        else
        {
            cache = Wrap(() => CacheRegistry.Parse(options.Accelerator ?? "none"), nameof(options), $"SamplingOptions.Accelerator '{options.Accelerator}': ");
        }

        var request = new SampleRequest(classes, options.Steps, options.Sampler, options.Cfg, options.CfgChannels, options.Eta, options.Seed,
            options.Noise is null ? null : new Tensor((float[])options.Noise.Data.Clone(), options.Noise.Shape));
        return (request, cache);
    }

    private static IGemm CreateGemm(PipelineOptions options, WeightPrecision precision)
    {
        string name = (options.Gemm ?? "").Trim().ToLowerInvariant();
        if (!GemmFactory.Backends.Contains(name))
        {
            throw new ArgumentException(
                $"PipelineOptions.Gemm '{options.Gemm}' is unknown; expected one of: {string.Join(", ", GemmFactory.Backends)}", nameof(options));
        }

        bool half = precision != WeightPrecision.Float32;
        if (half && name == "openblas")
        {
            throw new ArgumentException(
                $"PipelineOptions.Weights '{options.Weights}' with PipelineOptions.Gemm 'openblas': OpenBLAS multiplies float32 weights only; use Gemm \"managed\" or \"auto\", or Weights \"f32\"", nameof(options));
        }

        IGemm gemm = Wrap(() => GemmFactory.Create(half && name == "auto" ? "managed" : name, options.Threads), nameof(options), $"PipelineOptions.Gemm '{options.Gemm}': ");
        if (!gemm.Supports(precision))
        {
            throw new ArgumentException(
                $"PipelineOptions.Weights '{options.Weights}' with PipelineOptions.Gemm '{options.Gemm}': that backend rounds every weight to bf16; use Gemm \"managed\", or Weights \"bf16\"", nameof(options));
        }

        return gemm;
    }

    /// <summary>
    /// The VAE as <c>ditcache sample</c> picks it: <see cref="PipelineOptions.Vae"/>, else the vae/ folder of a diffusers
    /// model folder when the model is latent (not 1 or 3 channels); none for a pixel-space model without one.
    /// </summary>
    private static (VaeDecoder? Decoder, string? Source) LoadVae(string? model, PipelineOptions options, DitConfig c, string source, IGemm gemm)
    {
        string? path = options.Vae;
        string named = $"PipelineOptions.Vae '{path}'";
        if (path is null && c.InChannels is not (1 or 3) && model is not null && Directory.Exists(model))
        {
            path = DiffusersFolder.Open(model).VaeFolder;
            named = $"{path} (the vae/ folder of the model)";
        }

        if (path is null)
        {
            return (null, null);
        }

        VaeWeights weights = VaeWeights.Load(path);
        if (weights.Config.LatentChannels != c.InChannels)
        {
            throw new ArgumentException(
                $"{named} decodes {weights.Config.LatentChannels}-channel latents but {source} samples {c.InChannels} channels; give the VAE the DiT was trained with (DiT-XL/2: a 4-channel SD VAE, stabilityai/sd-vae-ft-ema or -mse)",
                nameof(options));
        }

        return (new VaeDecoder(weights, gemm), path);
    }

    /// <summary>Runs <paramref name="body"/>, turning a <see cref="DitCacheException"/> (a bad value) into an <see cref="ArgumentException"/> naming the option.</summary>
    private static T Wrap<T>(Func<T> body, string parameter, string prefix = "")
    {
        try
        {
            return body();
        }
        catch (DitCacheException e)
        {
            throw new ArgumentException(prefix + e.Message, parameter, e);
        }
    }
}
