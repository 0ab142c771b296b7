using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Assets;
using DitCache.Evaluation.Reports;
using DitCache.Evaluation.Shards;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Spectre.Console;

namespace DitCache.Cli;

/// <summary>
/// <c>ditcache sample</c>: draw one image per class with a DiT, optionally through a cache policy, and write the PNG
/// grid, the raw sample tensor and a JSON report. Every flag is checked before the run starts; every output goes
/// through a temporary file.
/// </summary>
internal static class SampleCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr, bool interactive)
    {
        var model = new Option<string?>("--model") { Description = "DiT checkpoint (.safetensors or PyTorch .pt) or diffusers folder (model_index.json, transformer/, vae/); default: the embedded Fashion-MNIST model" };
        var classes = new Option<string>("--classes") { Description = "comma-separated class ids, one image each, e.g. 0,1,2,3; for a 1000-class (ImageNet) model also names, e.g. 207,\"golden retriever\",tabby", DefaultValueFactory = _ => "0,1,2,3" };
        var steps = new Option<int>("--steps") { Description = "sampling steps (respaced from 1000)", DefaultValueFactory = _ => 50 }.Range(1, 1000);
        var sampler = new Option<string>("--sampler") { Description = SchedulerRegistry.Choices, DefaultValueFactory = _ => "ddim" };
        var cfg = new Option<float>("--cfg") { Description = "classifier-free guidance scale; 1 disables guidance", DefaultValueFactory = _ => DefaultCfg }.AtLeast(1f, "; very large scales can overflow, which is reported");
        var cfgChannels = new Option<int?>("--cfg-channels") { Description = "guide only the first K channels (3 reproduces DiT's sample.py); default: all" }.Range(1, 4096, ", at most the model's input channels");
        var eta = new Option<double>("--eta") { Description = "DDIM eta (0 = deterministic)", DefaultValueFactory = _ => 0.0 }.AtLeast(0.0, "; above 1 the DDIM noise can exceed what a step allows and sampling diverges, which is reported");
        var cache = new Option<string>("--cache") { Description = "accelerator: name or name:key=value,...; " + string.Join("; ", CacheRegistry.Methods.Select(m => $"{m.Name} = {m.Summary}")), DefaultValueFactory = _ => "none" };
        var seed = new Option<int>("--seed") { Description = "seed of the Gaussian noise", DefaultValueFactory = _ => 0 }.Range(int.MinValue, int.MaxValue);
        var noise = new Option<string?>("--noise") { Description = "safetensors file with tensor \"noise\" [N,C,H,W] float32 (N = number of classes) as the initial noise" };
        var saveTensor = new Option<string?>("--save-tensor") { Description = "write the final sample (before clamping) as safetensors tensor \"sample\" [N,C,H,W]" };
        var report = new Option<string?>("--report") { Description = "write a JSON report: per-step records, FLOPs, seconds" };
        var output = new Option<string?>("--out") { Description = "write a PNG grid of the images (x+1)/2 clamped to [0,1], times 255, rounded (DiT's sample.py); a latent DiT decodes through the VAE first" };
        var vae = new Option<string?>("--vae") { Description = "VAE that decodes a latent DiT's samples for --out and --save-image: a diffusers vae/ folder (config.json + weights) or a weights file (.safetensors, .pt, .ckpt; diffusers or CompVis names); default: the vae/ folder of a diffusers --model folder" };
        var saveImage = new Option<string?>("--save-image") { Description = "write the decoded images (before clamping) as safetensors tensor \"image\" [N,3,H,W] float32" };
        var columns = new Option<int?>("--columns") { Description = "images per row of the PNG grid; default: all in one row, at most 10" }.Range(1, 1000);
        var threads = new Option<int>("--threads") { Description = "threads for GEMM and kernels", DefaultValueFactory = _ => Environment.ProcessorCount }.Range(1, FlagRange.MaxThreads);
        var gemm = GemmFlags.Gemm();
        var deterministic = GemmFlags.Deterministic();
        var weightsFlag = GemmFlags.Weights();
        var heads = new Option<int?>("--heads") { Description = "attention heads when the checkpoint does not say and matches no preset" }.Range(1, 4096, ", dividing the hidden width");
        var inputSize = new Option<int?>("--input-size") { Description = "model input side when the checkpoint has no pos_embed" }.Range(1, 1024, ", a multiple of the patch size");
        var quiet = new Option<bool>("--quiet") { Description = "no progress bar and no summary" };
        var shadow = new Option<bool>("--shadow") { Description = "diagnostics: also compute the true features on cached steps and report the forecast's relative L2 error per step and site (slower; the sample is unchanged)" };
        var cacheBudget = CacheBudgetFlag.Create();
        var reportTokens = new Option<bool>("--report-tokens") { Description = "with --report: list, per step and block, the token indices a token-wise cache (toca, duca) recomputed, per batch row" };
        var samples = new Option<int?>("--samples") { Description = "with --out-dir: images in the whole run; image i has class i mod (number of --classes) and noise seeded by (seed, its class, i); default: one per class" }.Range(1, 1_000_000);
        var batch = new Option<int?>("--batch") { Description = "with --out-dir: images per sampling run (the CFG batch is twice this); default 16" }.Range(1, 4096, ", and within the machine's memory");
        var shard = ShardFlags.Shard();
        var outDir = ShardFlags.OutDir();

        var command = new Command("sample", "Sample images with a DiT, optionally accelerated by a cache policy.")
        {
            model, vae, classes, steps, sampler, cfg, cfgChannels, eta, cache, seed, noise, saveTensor, saveImage, report, output, columns,
            threads, gemm, deterministic, weightsFlag, heads, inputSize, quiet, shadow, reportTokens, samples, batch, shard, outDir, cacheBudget,
        };

        command.SetAction(parse =>
        {
            var o = new SampleOptions(
                parse.GetValue(model), parse.GetValue(classes)!, parse.GetValue(steps), parse.GetValue(sampler)!,
                parse.GetValue(cfg), parse.GetValue(cfgChannels), parse.GetValue(eta), parse.GetValue(cache)!,
                parse.GetValue(seed), parse.GetValue(noise), parse.GetValue(saveTensor), parse.GetValue(report),
                parse.GetValue(output), parse.GetValue(columns), parse.GetValue(threads), parse.GetValue(gemm)!, parse.GetValue(deterministic),
                parse.GetValue(heads), parse.GetValue(inputSize), parse.GetValue(quiet), parse.GetValue(shadow), parse.GetValue(reportTokens),
                parse.GetValue(vae), parse.GetValue(saveImage), parse.GetValue(weightsFlag)!,
                parse.GetValue(samples), parse.GetValue(batch), parse.GetValue(shard), parse.GetValue(outDir), parse.GetValue(cacheBudget));
            return o.OutDir is not null || o.Shard is not null || o.Samples is not null || o.Batch is not null
                ? RunSharded(o, stdout, stderr)
                : Run(o, stdout, stderr, interactive);
        });
        return command;
    }

    /// <summary>The guidance scale used when --cfg is not given (models/README.md explains the choice).</summary>
    public const float DefaultCfg = 4.0f;

    private static int Run(SampleOptions o, TextWriter stdout, TextWriter stderr, bool interactive)
    {
        // 1. Flags that need no model.
        if (!SchedulerRegistry.IsKnown(o.Sampler))
        {
            throw Usage(SchedulerRegistry.UnknownMessage(o.Sampler));
        }

        if (o.Eta != 0 && !SchedulerRegistry.UsesEta(o.Sampler))
        {
            throw Usage("--eta applies to the ddim sampler only; drop it or use --sampler ddim");
        }

        if (o.ReportTokens && o.Report is null)
        {
            throw Usage("--report-tokens lists the picked tokens in the JSON report; give --report FILE as well");
        }

        _ = ParseClasses(o.Classes, ImageNetClasses.Count);          // ids and names checked before a long model load
        ICacheOptions cacheOptions = CacheRegistry.Parse(o.Cache);
        long? budget = CacheBudgetFlag.Parse(o.CacheBudget);
        CheckOutputPath(o.Out, "--out");
        CheckOutputPath(o.SaveTensor, "--save-tensor");
        CheckOutputPath(o.SaveImage, "--save-image");
        CheckOutputPath(o.Report, "--report");
        CheckDistinct([("--out", o.Out), ("--save-tensor", o.SaveTensor), ("--save-image", o.SaveImage), ("--report", o.Report)],
            [("--model", o.Model), ("--vae", o.Vae), ("--noise", o.Noise)]);
        bool wantsImages = o.Out is not null || o.SaveImage is not null;
        if (o.Vae is not null && !wantsImages)
        {
            throw Usage($"--vae {o.Vae}: the VAE decodes the samples for --out and --save-image, and neither is given; add --out FILE.png or --save-image FILE, or drop --vae (--save-tensor keeps the latents)");
        }

        if (o.Vae is not null && !File.Exists(o.Vae) && !Directory.Exists(o.Vae))
        {
            throw Usage($"--vae {o.Vae}: no such file or folder; give a diffusers vae/ folder or a VAE weights file");
        }

        WeightPrecision precision = WeightPrecisions.Parse(o.Weights);
        IGemm gemm = GemmFlags.Create(o.Gemm, o.Deterministic, o.Threads, precision);

        // 2. The model, then the flags that depend on it.
        DitWeights weights = DefaultModel.LoadWeights(o.Model, o.Heads, o.InputSize, precision: precision);
        DitConfig c = weights.Config;
        string modelName = o.Model ?? "embedded:" + DefaultModel.ResourceName;
        int[] labels = ModelClasses(o, c, modelName);

        (VaeDecoder? decoder, string? vaeName) = wantsImages ? LoadVae(o, c, modelName, gemm) : (null, null);
        Tensor? initialNoise = o.Noise is null ? null : LoadNoise(o.Noise, labels.Length, c);

        // 3. Run.
        CalibrationFile calibration = DefaultModel.LoadCalibration(o.Model);
        CalibrationWarning.Print(stderr, calibration, [cacheOptions.Name]);
        var pipeline = new DiffusionPipeline(new DitModel(weights, gemm, o.Threads), calibration);
        cacheOptions = CacheBudgetFlag.Apply(cacheOptions, budget, pipeline, labels.Length, o.Steps, o.Sampler, o.Cfg, stderr);
        var request = new SampleRequest(labels, o.Steps, o.Sampler, o.Cfg, o.CfgChannels, o.Eta, o.Seed, initialNoise, o.Shadow, o.ReportTokens);
        SampleResult result;
        if (interactive && !o.Quiet)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
            SampleResult? done = null;
            console.Progress().AutoClear(true).Columns(
                new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    ProgressTask task = ctx.AddTask($"{o.Sampler} x{o.Steps}, cache {cacheOptions.Spec}", maxValue: o.Steps);
                    done = pipeline.Run(request, cacheOptions, progress: (s, _) => task.Value = s);
                });
            result = done!;
        }
        else
        {
            result = pipeline.Run(request, cacheOptions);
        }

        // 4. Decode (one image at a time), then the outputs: each written to a temporary file, all renamed into place
        // once every one is written.
        Tensor images = result.Sample;
        double decodeSeconds = 0;
        if (decoder is not null)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            images = decoder.Decode(result.Sample);
            decodeSeconds = clock.Elapsed.TotalSeconds;
            if (images.FirstNonFinite() is { } where)
            {
                stderr.WriteLine($"warning: the decoded images hold {where}; the PNG shows such pixels as 0");
            }
        }

        using (var outputs = new AtomicOutputs())
        {
            if (o.SaveTensor is not null)
            {
                byte[] tensor = SafeTensors.Serialize(new Dictionary<string, Tensor> { ["sample"] = result.Sample }, null, StoredDType.F32);
                outputs.Add(o.SaveTensor, "--save-tensor", s => s.Write(tensor));
            }

            if (o.Report is not null)
            {
                byte[] json = RunReport.ToJson(result, request, c, modelName, gemm.Name, o.Threads, vaeName, decodeSeconds, precision.Name());
                outputs.Add(o.Report, "--report", s => s.Write(json));
            }

            if (o.SaveImage is not null)
            {
                byte[] tensor = SafeTensors.Serialize(new Dictionary<string, Tensor> { ["image"] = images }, null, StoredDType.F32);
                outputs.Add(o.SaveImage, "--save-image", s => s.Write(tensor));
            }

            if (o.Out is not null)
            {
                // As torchvision's make_grid (DiT's sample.py saves through save_image): a 2-pixel border between
                // images, none around a single image.
                byte[] png = Png.EncodeGrid(images, o.Columns ?? Math.Min(labels.Length, 10), padding: labels.Length == 1 ? 0 : 2);
                outputs.Add(o.Out, "--out", s => s.Write(png));
            }

            outputs.Commit();
        }

        if (!o.Quiet)
        {
            int computed = result.Steps.Count(s => s.Computed);
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sampled {labels.Length} image(s) with {c.Name} ({o.Sampler}, {o.Steps} steps, cfg {o.Cfg}, cache {result.Cache}, gemm {gemm.Name}, {o.Threads} threads)"));
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.Seconds:F2} s sampling{(decoder is null ? "" : $" + {decodeSeconds:F2} s VAE decode")}; {result.Flops / 1e9:F1} of {result.FullFlops / 1e9:F1} GFLOPs ({result.FullFlops / Math.Max(result.Flops, 1):F2}x fewer); {computed}/{o.Steps} steps fully computed"));
            if (result.Telemetry.ShadowErrors is { } errors && result.Telemetry.ShadowBlocksErrors is { } blocks)
            {
                double[] all = errors.SelectMany(e => e).Concat(blocks).Where(double.IsFinite).ToArray();
                stdout.WriteLine(all.Length == 0
                    ? "shadow: nothing was forecast"
                    : string.Create(CultureInfo.InvariantCulture,
                        $"shadow: forecast relative L2 mean {all.Average():G4}, max {all.Max():G4} over {all.Length} forecast site-steps"));
            }

            foreach (string? path in new[] { o.Out, o.SaveImage, o.SaveTensor, o.Report })
            {
                if (path is not null)
                {
                    stdout.WriteLine($"wrote {path}");
                }
            }
        }

        return 0;
    }

    /// <summary>
    /// <c>--out-dir DIR</c> (with <c>--samples N</c>, <c>--batch B</c>, <c>--shard k/n</c>): N images in batches of B,
    /// image i of class <c>classes[i mod C]</c> from the noise seeded by (seed, class, i), the stochastic steps of batch
    /// b from the seed (seed, b); this shard runs the batches b with b mod n = k and writes each image (its sample, and
    /// the decoded image when a VAE is given) to its own file (<see cref="ShardStore"/>).
    /// </summary>
    private static int RunSharded(SampleOptions o, TextWriter stdout, TextWriter stderr)
    {
        if (o.OutDir is null)
        {
            string flag = o.Shard is not null ? $"--shard {o.Shard}" : o.Samples is not null ? "--samples" : "--batch";
            throw Usage($"{flag} writes one file per image; give --out-dir DIR (shared by all shards), or drop {flag.Split(' ')[0]} to sample one image per --classes entry");
        }

        const string Why = "each image goes to its own file there";
        ShardFlags.Refuse(o.Noise is not null, "--noise", "the noise of image i is seeded by (seed, class, i)");
        ShardFlags.Refuse(o.Out is not null, "--out", Why);
        ShardFlags.Refuse(o.SaveTensor is not null, "--save-tensor", Why);
        ShardFlags.Refuse(o.SaveImage is not null, "--save-image", Why);
        ShardFlags.Refuse(o.Report is not null, "--report", Why);
        ShardFlags.Refuse(o.Columns is not null, "--columns", Why);
        ShardFlags.Refuse(o.Shadow, "--shadow", "a diagnostic of one run");
        ShardFlags.Refuse(o.ReportTokens, "--report-tokens", "a diagnostic of one run");
        if (!SchedulerRegistry.IsKnown(o.Sampler))
        {
            throw Usage(SchedulerRegistry.UnknownMessage(o.Sampler));
        }

        if (o.Eta != 0 && !SchedulerRegistry.UsesEta(o.Sampler))
        {
            throw Usage("--eta applies to the ddim sampler only; drop it or use --sampler ddim");
        }

        ShardSpec spec = o.Shard is null ? ShardSpec.Whole : ShardSpec.Parse(o.Shard);
        _ = ParseClasses(o.Classes, ImageNetClasses.Count);
        ICacheOptions cacheOptions = CacheRegistry.Parse(o.Cache);
        long? budget = CacheBudgetFlag.Parse(o.CacheBudget);
        CheckDistinct([("--out-dir", o.OutDir)], [("--model", o.Model), ("--vae", o.Vae)]);
        if (o.Vae is not null && !File.Exists(o.Vae) && !Directory.Exists(o.Vae))
        {
            throw Usage($"--vae {o.Vae}: no such file or folder; give a diffusers vae/ folder or a VAE weights file");
        }

        WeightPrecision precision = WeightPrecisions.Parse(o.Weights);
        IGemm gemm = GemmFlags.Create(o.Gemm, o.Deterministic, o.Threads, precision);
        (DitWeights weights, string fingerprint) = ShardFlags.LoadModel(o.Model, o.Heads, o.InputSize, precision);
        DitConfig c = weights.Config;
        string modelName = o.Model ?? "embedded:" + DefaultModel.ResourceName;
        int[] classes = ModelClasses(o, c, modelName);

        // A VAE decodes when one is given, or a latent diffusers --model folder has one; else the samples are kept.
        bool decodes = o.Vae is not null || (c.InChannels is not (1 or 3) && o.Model is not null && Directory.Exists(o.Model));
        (VaeDecoder? decoder, string? vaeName) = decodes ? LoadVae(o with { SaveImage = "--out-dir" }, c, modelName, gemm) : (null, null);
        int n = o.Samples ?? classes.Length, batchSize = o.Batch ?? DefaultBatch;
        CalibrationFile calibration = DefaultModel.LoadCalibration(o.Model);
        var pipeline = new DiffusionPipeline(new DitModel(weights, gemm, o.Threads), calibration);
        cacheOptions = CacheBudgetFlag.Apply(cacheOptions, budget, pipeline, batchSize, o.Steps, o.Sampler, o.Cfg, stderr);
        var recorded = new Dictionary<string, string>
        {
            ["model"] = fingerprint,
            ["vae"] = vaeName is null ? "none" : Path.GetFileName(Path.TrimEndingDirectorySeparator(vaeName)),
            ["images"] = ShardFlags.Number(n),
            ["batch"] = ShardFlags.Number(batchSize),
            ["classes"] = string.Join(",", classes),
            ["steps"] = ShardFlags.Number(o.Steps),
            ["sampler"] = o.Sampler,
            ["cfg"] = ShardFlags.Number(o.Cfg),
            ["cfg-channels"] = o.CfgChannels is int k ? ShardFlags.Number(k) : "all",
            ["eta"] = ShardFlags.Number(o.Eta),
            ["cache"] = cacheOptions.Spec,
            ["seed"] = ShardFlags.Number(o.Seed),
            ["weights"] = precision.Name(),
        };
        ShardFlags.AddGemm(recorded, gemm.Name, o.Deterministic, o.Threads);

        CalibrationWarning.Print(stderr, calibration, [cacheOptions.Name]);
        using ShardStore store = ShardStore.Open(o.OutDir, spec, "sample", recorded);
        int resumed = store.DoneCount, batches = (n + batchSize - 1) / batchSize, ran = 0;
        int image = c.InChannels * c.InputSize * c.InputSize;
        for (int b = 0; b < batches; b++)
        {
            int start = b * batchSize, count = Math.Min(batchSize, n - start);
            if (!spec.Owns(b) || Enumerable.Range(start, count).All(store.IsDone))
            {
                continue;
            }

            int[] labels = new int[count];
            float[] noise = new float[count * image];                                 // (B, C, H, W)
            for (int i = 0; i < count; i++)
            {
                labels[i] = classes[(start + i) % classes.Length];
                new GaussianNoise(Evaluation.Quality.QualityEvaluation.DeriveSeed(o.Seed, labels[i], start + i)).Fill(noise.AsSpan(i * image, image));
            }

            var request = new SampleRequest(labels, o.Steps, o.Sampler, o.Cfg, o.CfgChannels, o.Eta,
                Evaluation.Quality.QualityEvaluation.DeriveSeed(o.Seed, -1, b), new Tensor(noise, count, c.InChannels, c.InputSize, c.InputSize));
            SampleResult result = pipeline.Run(request, cacheOptions);
            Tensor? decoded = decoder?.Decode(result.Sample);
            for (int i = 0; i < count; i++)
            {
                var tensors = new Dictionary<string, Tensor>
                {
                    ["sample"] = new Tensor(result.Sample.Data.AsSpan(i * image, image).ToArray(), 1, c.InChannels, c.InputSize, c.InputSize),
                };
                if (decoded is not null)
                {
                    int pixels = decoded.Data.Length / count;
                    tensors["image"] = new Tensor(decoded.Data.AsSpan(i * pixels, pixels).ToArray(), 1, decoded.Shape[1], decoded.Shape[2], decoded.Shape[3]);
                }

                var metadata = new Dictionary<string, string> { ["index"] = ShardFlags.Number(start + i), ["label"] = ShardFlags.Number(labels[i]) };
                store.Write(start + i, SafeTensors.Serialize(tensors, metadata, StoredDType.F32));
            }

            ran++;
            if (!o.Quiet)
            {
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"shard {spec}: batch {b + 1}/{batches} (images {start}..{start + count - 1}) in {result.Seconds:F2} s"));
            }
        }

        if (!o.Quiet)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shard {spec}: {store.DoneCount} image(s) done ({resumed} from before, {ran} batch(es) run now) in {store.Directory}; merge all shards with 'ditcache merge {o.OutDir} --out MERGED'"));
        }

        return 0;
    }

    /// <summary>Images per sampling run of <c>sample --out-dir</c> when --batch is not given.</summary>
    public const int DefaultBatch = 16;

    /// <summary>
    /// Parses --classes: comma-separated class ids, and for a model of <see cref="ImageNetClasses.Count"/> classes also
    /// ImageNet class names (any one synonym, case-insensitive, optionally in double quotes:
    /// <c>207,"golden retriever",tabby</c>). Names hold no commas, so the comma always separates entries.
    /// </summary>
    internal static int[] ParseClasses(string text, int? numClasses = null)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries);
        var labels = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            string part = parts[i].Length >= 2 && parts[i][0] == '"' && parts[i][^1] == '"' ? parts[i][1..^1].Trim() : parts[i];
            if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out labels[i]))
            {
                continue;
            }

            if (numClasses == ImageNetClasses.Count && part.Length > 0 && !part.All(char.IsAsciiDigit))
            {
                labels[i] = ImageNetClasses.Resolve(part);
                continue;
            }

            string names = numClasses == ImageNetClasses.Count ? "" : " (class names apply to 1000-class ImageNet models only)";
            throw Usage($"--classes '{text}': '{parts[i]}' is not a class label; give comma-separated non-negative integers such as 0,1,2,3{names}");
        }

        return labels;
    }

    /// <summary>
    /// Refuses an output that is one of the inputs (it would be replaced before or while it is read) or the same file
    /// as another output (one would silently replace the other). Paths compare after resolving symbolic links.
    /// </summary>
    internal static void CheckDistinct((string Flag, string? Path)[] outputs, (string Flag, string? Path)[] inputs)
    {
        var seen = new List<(string Flag, string Path, string Full)>();
        foreach ((string flag, string? path) in inputs.Concat(outputs))
        {
            if (path is null)
            {
                continue;
            }

            string full = Resolve(path);
            if (seen.Find(s => s.Full == full) is { Flag: not null } other)
            {
                bool input = inputs.Any(i => i.Flag == other.Flag);
                throw Usage(input
                    ? $"{flag} {path} is the file given to {other.Flag}; write the output to another path so the input is not replaced"
                    : $"{flag} {path} is also the path of {other.Flag}; give each output its own path");
            }

            seen.Add((flag, path, full));
        }
    }

    private static string Resolve(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            return File.Exists(full) && File.ResolveLinkTarget(full, returnFinalTarget: true) is { } target ? target.FullName : full;
        }
        catch (IOException)
        {
            return full;            // a link loop names no file of its own; reading or writing it reports the loop
        }
    }

    internal static void CheckOutputPath(string? path, string flag)
    {
        if (path is null)
        {
            return;
        }

        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is null || !Directory.Exists(dir))
        {
            throw Usage($"{flag} {path}: directory '{dir}' does not exist; create it first or choose another path");
        }

        if (Directory.Exists(path))
        {
            throw Usage($"{flag} {path} is a directory; give a file path");
        }
    }

    private static Tensor LoadNoise(string path, int n, DitConfig c)
    {
        TensorFile file = Checkpoint.Load(path);
        if (!file.Tensors.TryGetValue("noise", out Tensor? noise))
        {
            throw new DitCacheException($"--noise {path}: no tensor \"noise\" (found: {string.Join(", ", file.Tensors.Keys.Take(5))}); save the initial noise under the key \"noise\"");
        }

        if (!noise.HasShape(n, c.InChannels, c.InputSize, c.InputSize))
        {
            throw new DitCacheException(
                $"--noise {path}: tensor \"noise\" has shape {noise.ShapeText}; expected [{n}, {c.InChannels}, {c.InputSize}, {c.InputSize}] (N = number of --classes, then the model's channels and input size)");
        }

        if (noise.FirstNonFinite() is { } where)
        {
            throw new DitCacheException($"--noise {path}: tensor \"noise\" holds {where}; the initial noise must be finite (standard normal samples)");
        }

        return noise;
    }

    /// <summary>
    /// The VAE for --out and --save-image, checked before sampling: --vae, else the vae/ folder of a diffusers --model
    /// folder. A pixel-space DiT (1 or 3 channels) needs none and gets one only from --vae. Returns (null, null) when
    /// the samples are the images.
    /// </summary>
    private static (VaeDecoder? Decoder, string? Name) LoadVae(SampleOptions o, DitConfig c, string modelName, IGemm gemm) =>
        LoadVae(o.Vae, o.Model, c, modelName, gemm, o.Out is not null ? "--out" : "--save-image", png: o.Out is not null);

    /// <summary>
    /// The VAE of <paramref name="vae"/>, else of the vae/ folder of a diffusers <paramref name="model"/> folder, for a
    /// latent DiT; (null, null) for a pixel-space DiT without --vae. <paramref name="flag"/> names what needs it.
    /// </summary>
    internal static (VaeDecoder? Decoder, string? Name) LoadVae(string? vae, string? model, DitConfig c, string modelName, IGemm gemm, string flag, bool png)
    {
        string? path = vae;
        string source = "--vae " + vae;
        if (vae is not null && !File.Exists(vae) && !Directory.Exists(vae))
        {
            throw Usage($"--vae {vae}: no such file or folder; give a diffusers vae/ folder or a VAE weights file");
        }

        if (path is null && c.InChannels is not (1 or 3) && model is not null && Directory.Exists(model))
        {
            path = DiffusersFolder.Open(model).VaeFolder;
            source = $"{path} (the vae/ folder of --model)";
        }

        if (path is null)
        {
            if (c.InChannels is 1 or 3)
            {
                return (null, null);
            }

            throw Usage(
                $"{flag}: {modelName} is a latent DiT ({c.InChannels} channels) and decoding its latents to pixels needs a VAE; pass --vae PATH (a diffusers vae/ folder or a weights file; DiT uses stabilityai/sd-vae-ft-ema or stabilityai/sd-vae-ft-mse from Hugging Face), or use --save-tensor to keep the latents");
        }

        VaeWeights weights = VaeWeights.Load(path);
        if (weights.Config.LatentChannels != c.InChannels)
        {
            throw Usage(
                $"{source}: the VAE decodes {weights.Config.LatentChannels}-channel latents but {modelName} samples {c.InChannels} channels; give the VAE the DiT was trained with (DiT-XL/2: a 4-channel SD VAE, stabilityai/sd-vae-ft-ema or -mse)");
        }

        if (png && weights.Config.OutChannels is not (1 or 3))
        {
            throw Usage($"--out: {source} decodes {weights.Config.OutChannels}-channel images and a PNG holds 1 or 3; use --save-image to keep them");
        }

        return (new VaeDecoder(weights, gemm), path);
    }

    internal static DitCacheException Usage(string message) => new(message, exitCode: 2);

    /// <summary>The flags checked against the loaded model: --classes within its classes, --cfg-channels within its channels.</summary>
    private static int[] ModelClasses(SampleOptions o, DitConfig c, string modelName)
    {
        int[] classes = ParseClasses(o.Classes, c.NumClasses);
        int bad = Array.FindIndex(classes, y => y >= c.NumClasses);
        if (bad >= 0)
        {
            throw Usage($"--classes: class {classes[bad]} is out of range; {modelName} has classes 0..{c.NumClasses - 1}");
        }

        if (o.CfgChannels is int g && (g < 1 || g > c.InChannels))
        {
            throw Usage($"--cfg-channels {g} is out of range; this model has {c.InChannels} input channels (give 1..{c.InChannels})");
        }

        return classes;
    }

    private sealed record SampleOptions(string? Model, string Classes, int Steps, string Sampler, float Cfg, int? CfgChannels,
        double Eta, string Cache, int Seed, string? Noise, string? SaveTensor, string? Report, string? Out, int? Columns,
        int Threads, string Gemm, bool Deterministic, int? Heads, int? InputSize, bool Quiet, bool Shadow, bool ReportTokens,
        string? Vae, string? SaveImage, string Weights, int? Samples, int? Batch, string? Shard, string? OutDir, string? CacheBudget);
}
