using System;
using System.IO;

namespace DitCache.Tests;

/// <summary>
/// A diffusers pipeline folder assembled from the test data: the tiny DiT of diffusers/tiny-dit plus the tiny VAE of
/// vae/ as vae/ (tests/TestData/README.md).
/// </summary>
internal static class TinyPipelineFolder
{
    /// <summary>Builds the folder as <c>pipeline/</c> under <paramref name="parent"/> and returns its path.</summary>
    public static string Create(string parent)
    {
        string Data(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);
        string root = Path.Combine(parent, "pipeline");
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
