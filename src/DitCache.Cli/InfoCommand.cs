using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Cli;

/// <summary><c>ditcache info</c>: a model's config, parameter count and GFLOPs per image forward.</summary>
internal static class InfoCommand
{
    public static Command Create(TextWriter stdout)
    {
        var model = new Option<string?>("--model") { Description = "DiT checkpoint (.safetensors or PyTorch .pt); default: the embedded Fashion-MNIST model" };
        var preset = new Option<string?>("--preset") { Description = "a DiT preset instead of a checkpoint, e.g. DiT-XL/2" };
        var imageSize = new Option<int>("--image-size") { Description = "image side in pixels for --preset (latent side = image/8)", DefaultValueFactory = _ => 256 };
        var heads = new Option<int?>("--heads") { Description = "attention heads when the checkpoint does not say and matches no preset" };
        var command = new Command("info", "Print a model's config, parameter count and GFLOPs per image forward (DiT-paper convention).")
        {
            model, preset, imageSize, heads,
        };
        command.SetAction(parse =>
        {
            string? presetName = parse.GetValue(preset);
            string? path = parse.GetValue(model);
            if (presetName is not null && path is not null)
            {
                throw new DitCacheException("give either --model or --preset, not both", exitCode: 2);
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
        o.WriteLine(string.Create(inv, $"gflops:       {DitFlops.Forward(c, 1) / 1e9:0.00####} per image forward (blocks only, 2 FLOPs per multiply-add; METHODS.md 9.1)"));
    }
}
