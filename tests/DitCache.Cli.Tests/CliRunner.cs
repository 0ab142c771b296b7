using System;
using System.IO;

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
    public static string PipelineFolder()
    {
        string root = Path.Combine(TempDir(), "pipeline");
        string source = Data("diffusers", "tiny-dit");
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(root, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        Directory.CreateDirectory(Path.Combine(root, "vae"));
        File.Copy(Data("vae", "tiny_config.json"), Path.Combine(root, "vae", "config.json"));
        File.Copy(Data("vae", "tiny_diffusers.safetensors"), Path.Combine(root, "vae", "diffusion_pytorch_model.safetensors"));
        return root;
    }
}
