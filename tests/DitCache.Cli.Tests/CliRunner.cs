using System;
using System.IO;
using DitCache.Tests;

namespace DitCache.Cli.Tests;

/// <summary>Runs the CLI in-process, capturing stdout, stderr and the exit code.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr, interactive: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public static string Data(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    public static string TinyDit => Data("dit", "tiny_dit.safetensors");

    /// <summary>A fresh empty directory for one test's outputs.</summary>
    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "ditcache-cli-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A diffusers pipeline folder: the tiny DiT of diffusers/tiny-dit plus the tiny VAE of vae/ as vae/.</summary>
    public static string PipelineFolder() => TinyPipelineFolder.Create(TempDir());
}
