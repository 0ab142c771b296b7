using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Caching.Calibration;
using DitCache.Evaluation.Assets;
using DitCache.Evaluation.Tuning;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Cli;

/// <summary>
/// <c>ditcache calibrate METHOD|all --model PATH</c>, METHOD being a calibrated accelerator of
/// <see cref="CacheRegistry"/> (teacache, smoothcache, magcache): one full-compute sampling run records what
/// the calibrated accelerators need and writes it into the calibration file beside the model
/// (<c>NAME.calibration.json</c>, other sections kept), where <c>--cache</c> finds it. With <c>--target-speedup</c> each
/// method's knob is tuned to that FLOPs ratio on the calibration samples and the PSNR it costs is reported.
/// </summary>
internal static class CalibrateCommand
{
    /// <summary>Default images of a calibration: quick on 2 cores, enough to average over classes.</summary>
    public const int DefaultSamples = 16;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var method = new Argument<string>("method") { Description = string.Join(", ", CalibrationFile.Methods) + ", or all" };
        var model = new Option<string>("--model") { Description = "DiT checkpoint (.safetensors or PyTorch .pt); the calibration is written beside it as NAME.calibration.json", Required = true };
        var steps = new Option<int>("--steps") { Description = "sampling steps of the calibration run (use the step count you will sample with)", DefaultValueFactory = _ => 50 }.Range(2, 1000, "; teacache needs 6 or more");
        var samples = new Option<int>("--samples") { Description = "images sampled for the calibration (classes i mod num_classes)", DefaultValueFactory = _ => DefaultSamples }.Range(1, 10_000);
        var sampler = new Option<string>("--sampler") { Description = SchedulerRegistry.Choices, DefaultValueFactory = _ => "ddim" };
        var cfg = new Option<float>("--cfg") { Description = "guidance scale of the calibration run; sampling must use the same", DefaultValueFactory = _ => SampleCommand.DefaultCfg }.AtLeast(1f);
        var seed = new Option<int>("--seed") { Description = "seed of the noise", DefaultValueFactory = _ => 0 }.Range(int.MinValue, int.MaxValue);
        var lookahead = new Option<int>("--lookahead") { Description = "SmoothCache calibration lookahead L (rows 1 … L)", DefaultValueFactory = _ => 3 }.Range(1, 999, ", below --steps");
        var target = new Option<double?>("--target-speedup") { Description = "tune each method's knob to this FLOPs ratio on the calibration samples and report the PSNR it costs" }.AtLeast(1.0);
        var output = new Option<string?>("--out") { Description = "write the calibration here instead of beside the model" };
        var threads = new Option<int>("--threads") { Description = "threads for GEMM and kernels", DefaultValueFactory = _ => Environment.ProcessorCount }.Range(1, FlagRange.MaxThreads);
        var gemm = new Option<string>("--gemm") { Description = "GEMM backend: managed, managed-bf16, openblas, or auto", DefaultValueFactory = _ => "auto" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress lines" };

        var command = new Command("calibrate", $"Calibrate {DisplayNames()} for a model (full sampling run), optionally tuning to a target speedup.")
        {
            method, model, steps, samples, sampler, cfg, seed, lookahead, target, output, threads, gemm, quiet,
        };
        command.SetAction(parse =>
        {
            var o = new CalibrateOptions(parse.GetValue(method)!, parse.GetValue(model)!, parse.GetValue(steps), parse.GetValue(samples),
                parse.GetValue(sampler)!, parse.GetValue(cfg), parse.GetValue(seed), parse.GetValue(lookahead), parse.GetValue(target),
                parse.GetValue(output), parse.GetValue(threads), parse.GetValue(gemm)!, parse.GetValue(quiet));
            return Run(o, stdout, stderr);
        });
        return command;
    }

    private static int Run(CalibrateOptions o, TextWriter stdout, TextWriter stderr)
    {
        string name = o.Method.ToLowerInvariant();
        string[] methods = name == "all" ? [.. CalibrationFile.Methods] : [name];
        if (!CalibrationFile.Methods.Contains(name) && name != "all")
        {
            throw SampleCommand.Usage($"calibrate: unknown method '{o.Method}'; choose {string.Join(", ", CalibrationFile.Methods)} or all");
        }

        if (!File.Exists(o.Model) && !Directory.Exists(o.Model))
        {
            throw SampleCommand.Usage($"--model {o.Model}: file not found; give the checkpoint or diffusers folder to calibrate (e.g. {DefaultModel.RepositoryPath})");
        }

        string path = o.Out ?? CalibrationFile.PathFor(o.Model);
        SampleCommand.CheckOutputPath(path, "--out");
        SampleCommand.CheckDistinct([("--out", path)], [("--model", o.Model)]);
        CalibrationFile.Load(path, o.Model);                                                       // a malformed file fails before the run
        IGemm gemm = GemmFactory.Create(o.Gemm, o.Threads);
        DitWeights weights = DefaultModel.LoadWeights(o.Model);

        string command = CommandLine(o);
        var settings = new CalibrationSettings(methods, o.Steps, o.Samples, o.Sampler, o.Cfg, o.Seed, o.Lookahead, o.Target, command);
        Action<string> log = o.Quiet ? _ => { } : line => stderr.WriteLine(line);
        log($"calibrating {string.Join(", ", methods)} on {o.Model}: {o.Samples} image(s) (--samples), {o.Sampler} x{o.Steps}, cfg {o.Cfg.ToString(CultureInfo.InvariantCulture)}");
        CalibrationOutcome outcome = new Calibrator(new DitModel(weights, gemm, o.Threads), log).Run(settings, o.Model);

        foreach (ICalibrationSection section in outcome.Sections)
        {
            CalibrationFile.WriteSection(path, section, o.Model);
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {string.Join(", ", methods)} calibration to {path} (full-compute run {outcome.FullSeconds:F1} s, tuning {outcome.TuneSeconds:F1} s)"));
        foreach (ICalibrationSection section in outcome.Sections)
        {
            if (section.Describe() is { } line)
            {
                stdout.WriteLine(line);
            }
        }

        foreach (TunedSetting? t in outcome.Sections.Select(s => s.Tuned))
        {
            if (t is not null)
            {
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"tuned for {t.TargetSpeedup:G4}x: --cache {t.Spec}  FLOPs ratio {t.FlopsRatio:F2}, PSNR {t.Psnr:F2} dB vs full compute ({o.Samples} calibration image(s))"));
            }
        }

        return 0;
    }

    /// <summary>The calibrated methods' display names, e.g. "TeaCache, SmoothCache or MagCache".</summary>
    private static string DisplayNames()
    {
        string[] names = [.. CalibrationFile.Methods.Select(CacheRegistry.DisplayName)];
        return names.Length == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
    }

    private static string CommandLine(CalibrateOptions o)
    {
        var parts = new List<string> { "ditcache calibrate", o.Method, "--model", o.Model };
        parts.Add(string.Create(CultureInfo.InvariantCulture, $"--steps {o.Steps} --samples {o.Samples} --sampler {o.Sampler} --cfg {o.Cfg} --seed {o.Seed} --lookahead {o.Lookahead}"));
        if (o.Target is double t)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"--target-speedup {t}"));
        }

        return string.Join(' ', parts);
    }

    private sealed record CalibrateOptions(string Method, string Model, int Steps, int Samples, string Sampler, float Cfg, int Seed,
        int Lookahead, double? Target, string? Out, int Threads, string Gemm, bool Quiet);
}
