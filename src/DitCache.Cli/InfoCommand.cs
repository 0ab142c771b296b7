using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Assets;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Cli;

/// <summary>
/// <c>ditcache info</c>: a model's config, parameter count and GFLOPs per image forward; with <c>--cache</c>, the
/// feature memory that accelerator holds for a run of <c>--images</c> images (the CFG batch doubles the rows).
/// </summary>
internal static class InfoCommand
{
    public static Command Create(TextWriter stdout)
    {
        var model = new Option<string?>("--model") { Description = "DiT checkpoint (.safetensors or PyTorch .pt) or diffusers folder (model_index.json, transformer/, vae/); default: the embedded Fashion-MNIST model" };
        var preset = new Option<string?>("--preset") { Description = "a DiT preset instead of a checkpoint, e.g. DiT-XL/2" };
        var imageSize = new Option<int>("--image-size") { Description = "image side in pixels for --preset (latent side = image/8)", DefaultValueFactory = _ => 256 }.Range(8, 8192, ", a multiple of 8");
        var heads = new Option<int?>("--heads") { Description = "attention heads when the checkpoint does not say and matches no preset" }.Range(1, 4096, ", dividing the hidden width");
        var vae = new Option<string?>("--vae") { Description = "print a VAE's config: a diffusers vae/ folder or a weights file (alone, or beside --model)" };
        var cache = new Option<string?>("--cache") { Description = "also print the feature memory this accelerator holds for one run, e.g. foca:n=5" };
        var images = new Option<int>("--images") { Description = "images sampled at once, for --cache", DefaultValueFactory = _ => 1 }.Range(1, 65_536);
        var steps = new Option<int>("--steps") { Description = "sampling steps, for --cache", DefaultValueFactory = _ => 50 }.Range(1, 1000);
        var cfg = new Option<float>("--cfg") { Description = "guidance scale, for --cache (above 1 the batch holds a conditional and an unconditional row per image)", DefaultValueFactory = _ => SampleCommand.DefaultCfg }.AtLeast(1f);
        var cacheBudget = CacheBudgetFlag.Create();
        var command = new Command("info", "Print a model's config, parameter count and GFLOPs per image forward (DiT-paper convention), and with --cache the accelerator's memory.")
        {
            model, preset, imageSize, heads, vae, cache, images, steps, cfg, cacheBudget,
        };
        command.SetAction(parse =>
        {
            string? presetName = parse.GetValue(preset);
            string? path = parse.GetValue(model);
            if (presetName is not null && path is not null)
            {
                throw new DitCacheException("give either --model or --preset, not both", exitCode: 2);
            }

            string? vaePath = parse.GetValue(vae);
            if (vaePath is not null && presetName is null && path is null)
            {
                if (parse.GetValue(cache) is not null)
                {
                    throw new DitCacheException("--cache needs a DiT; give --model or --preset with it", exitCode: 2);
                }

                PrintVae(stdout, vaePath);
                return 0;
            }

            DitConfig config;
            string source;
            if (presetName is not null)
            {
                config = DitConfig.FromPreset(presetName, parse.GetValue(imageSize));
                source = $"preset {config.Name} at {parse.GetValue(imageSize)}x{parse.GetValue(imageSize)}";
            }
            else
            {
                DitWeights weights = DefaultModel.LoadWeights(path, parse.GetValue(heads));
                config = weights.Config;
                source = path ?? "embedded:" + DefaultModel.ResourceName;
            }

            Print(stdout, config, source);
            if (path is not null && Directory.Exists(path))
            {
                PrintDiffusers(stdout, DiffusersFolder.Open(path));
            }

            if (vaePath is not null)
            {
                PrintVae(stdout, vaePath);
            }

            if (parse.GetValue(cache) is { } spec)
            {
                // Calibrated accelerators need the model's calibration to be built (a preset has none).
                CalibrationFile? calibration = presetName is null ? DefaultModel.LoadCalibration(path) : null;
                PrintCache(stdout, config, CacheRegistry.Parse(spec), parse.GetValue(images), parse.GetValue(steps), parse.GetValue(cfg), calibration,
                    CacheBudgetFlag.Parse(parse.GetValue(cacheBudget)));
            }

            return 0;
        });
        return command;
    }

    private static void Print(TextWriter o, DitConfig c, string source)
    {
        CultureInfo inv = CultureInfo.InvariantCulture;
        o.WriteLine($"model:        {source}");
        o.WriteLine($"config:       {c.Name}");
        o.WriteLine($"depth:        {c.Depth}");
        o.WriteLine($"hidden:       {c.Hidden}");
        o.WriteLine($"heads:        {c.Heads} (head dim {c.HeadDim})");
        o.WriteLine($"patch:        {c.Patch}");
        o.WriteLine($"input:        {c.InChannels} x {c.InputSize} x {c.InputSize} ({c.Tokens} tokens)");
        o.WriteLine($"learn_sigma:  {(c.LearnSigma ? "true" : "false")} (out channels {c.OutChannels})");
        o.WriteLine($"classes:      {c.NumClasses} (+1 null class for guidance)");
        o.WriteLine(string.Create(inv, $"parameters:   {c.ParameterCount:N0}"));
        o.WriteLine(string.Create(inv, $"gflops:       {DitFlops.Forward(c, 1) / 1e9:0.00####} per image forward (blocks only, 2 FLOPs per multiply-add; docs/methods.md §9.1)"));
    }

    private static void PrintDiffusers(TextWriter o, DiffusersFolder folder)
    {
        DiffusersDitConfig t = folder.ReadConfig();
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"transformer:  {folder.ConfigPath} ({t.ClassName}: {t.Heads} heads x {t.HeadDim}, {t.Layers} layers, patch {t.PatchSize}, sample {t.SampleSize}, {t.InChannels} -> {t.OutChannels} channels, {t.Classes} classes)"));
        o.WriteLine($"weights:      {string.Join(", ", folder.IndexPath is null ? folder.WeightFiles : [folder.IndexPath, .. folder.WeightFiles])}");
        o.WriteLine($"vae:          {folder.VaeFolder ?? "none (no vae/ folder beside transformer/)"}");
        if (folder.VaeFolder is { } vae && File.Exists(Path.Combine(vae, "config.json")))
        {
            o.WriteLine($"vae config:   {VaeConfig.FromJsonFile(Path.Combine(vae, "config.json"))}");
        }
    }

    /// <summary>The VAE at <paramref name="path"/>, loaded (its config may come from the weight shapes).</summary>
    private static void PrintVae(TextWriter o, string path)
    {
        VaeWeights w = VaeWeights.Load(path);
        o.WriteLine($"vae:          {path}");
        o.WriteLine($"vae config:   {w.Config}");
        o.WriteLine($"vae weights:  {w.Naming} names; {w.Config.UpsampleFactor}x upsampling ({w.Config.LatentChannels}-channel latents of side s decode to {w.Config.OutChannels}-channel images of side {w.Config.UpsampleFactor}s)");
    }

    private static void PrintCache(TextWriter o, DitConfig c, ICacheOptions options, int images, int steps, float cfg, CalibrationFile? calibration,
        long? budget)
    {
        if (images < 1)
        {
            throw SampleCommand.Usage($"--images {images} is invalid; give 1 or more");
        }

        if (steps < 1 || steps > 1000)
        {
            throw SampleCommand.Usage($"--steps {steps} is out of range; give 1 to 1000");
        }

        if (!float.IsFinite(cfg) || cfg < 1f)
        {
            throw SampleCommand.Usage($"--cfg {cfg.ToString(CultureInfo.InvariantCulture)} is invalid; give a number >= 1 (1 disables guidance)");
        }

        int rows = cfg > 1f ? 2 * images : images;
        var grid = new GaussianDiffusion(steps).SamplingTimesteps;
        var run = new CacheRunInfo(steps, grid, rows, c.Tokens, c.Hidden, c.Depth, calibration, CfgScale: cfg > 1f ? cfg : 1.0);
        long feature = (long)rows * c.Tokens * c.Hidden * sizeof(float);
        CultureInfo inv = CultureInfo.InvariantCulture;
        if (budget is long b)
        {
            BudgetChoice choice = CacheBudget.Fit(options, run, b);
            foreach ((string spec, long needs) in choice.Tried)
            {
                o.WriteLine(string.Create(inv, $"cache:        {spec} needs {needs:N0} bytes ({needs / 1048576.0:0.##} MiB): over --cache-budget {b:N0}"));
            }

            options = choice.Options;
        }

        long bytes = options.Build(run).CacheBytes;
        o.WriteLine(string.Create(inv,
            $"cache:        {options.Spec} holds {bytes:N0} bytes ({bytes / 1048576.0:0.##} MiB) for {images} image(s), {rows} rows, {steps} steps = {bytes / (double)feature:0.#} feature tensors of {feature:N0} bytes"));
    }
}
