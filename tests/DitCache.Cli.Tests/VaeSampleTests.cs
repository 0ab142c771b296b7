using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.Json;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>
/// <c>ditcache sample</c> with a VAE: the end-to-end image of a tiny DiT + tiny VAE against the PyTorch pipeline of
/// tools/reference/make_pipeline_fixtures.py, the PNG bytes, --vae and the folder's vae/, and the errors that come
/// before sampling.
/// </summary>
public class VaeSampleTests
{
    private static TensorFile Golden { get; } = SafeTensors.Load(CliRunner.Data("pipeline", "tiny_pipeline_golden.safetensors"));

    private static string NoiseFile(string dir)
    {
        string path = Path.Combine(dir, "noise.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["noise"] = Golden.Tensors["noise"] });
        return path;
    }

    [Fact]
    public void FolderWithVaeReproducesThePyTorchPipelineImageAndPng()
    {
        string model = CliRunner.PipelineFolder(), dir = CliRunner.TempDir();
        string image = Path.Combine(dir, "image.safetensors"), png = Path.Combine(dir, "x.png");
        string latent = Path.Combine(dir, "latent.safetensors"), report = Path.Combine(dir, "report.json");
        var (code, output, err) = CliRunner.Run("sample", "--model", model, "--classes", "3,7", "--steps", "4", "--cfg", "4",
            "--noise", NoiseFile(dir), "--save-image", image, "--out", png, "--save-tensor", latent, "--report", report, "--threads", "2");
        Assert.True(code == 0, err);
        Assert.Contains("s VAE decode", output, StringComparison.Ordinal);

        // --save-tensor keeps the latent sample; --save-image holds the decoded images before clamping. Tolerance 1e-5
        // of the largest value: both are float32 sums taken in another order than PyTorch's (the random tiny DiT drives
        // the latents to |v| ~ 560 over 4 guided steps); measured 4.6e-7 (latent) and 7.9e-7 (image) with the managed
        // AVX-512 GEMM, so 1e-5 leaves room for other GEMM backends and still fails on any wrong operation.
        Tensor sample = SafeTensors.Load(latent).Tensors["sample"];
        AssertClose(Golden.Tensors["sample"].Data, sample.Data, 1e-5, "latent sample");
        Tensor got = SafeTensors.Load(image).Tensors["image"];
        Tensor want = Golden.Tensors["image"];
        Assert.Equal(want.Shape, got.Shape);
        Assert.Contains(got.Data, v => v is < -1f or > 1f);       // unclamped
        AssertClose(want.Data, got.Data, 1e-5, "decoded image");

        // The PNG: two 32x32 images side by side, a 2-pixel border of zeros, each pixel torchvision's
        // (clamp(x, -1, 1) + 1) / 2 * 255 + 0.5 truncated, of the image that --save-image wrote (exact) and within one
        // step of the bytes PyTorch's own image gives (the two images differ in the last float bits, which can move a
        // value across a rounding boundary).
        (int width, int height, byte[] rgb) = DecodePng(File.ReadAllBytes(png));
        Assert.Equal((2 * 32) + (3 * 2), width);
        Assert.Equal(32 + (2 * 2), height);
        float[] reference = Golden.Tensors["bytes"].Data;
        int inexact = 0;
        for (int i = 0; i < 2; i++)
        {
            for (int ch = 0; ch < 3; ch++)
            {
                for (int y = 0; y < 32; y++)
                {
                    for (int x = 0; x < 32; x++)
                    {
                        int at = (((((i * 3) + ch) * 32) + y) * 32) + x;
                        byte pixel = rgb[((((2 + y) * width) + 2 + (i * 34) + x) * 3) + ch];
                        double v = Math.Clamp((double)got.Data[at], -1.0, 1.0);
                        Assert.Equal((int)Math.Floor(((v + 1) / 2 * 255) + 0.5), pixel);
                        Assert.InRange(pixel - reference[at], -1f, 1f);
                        inexact += pixel == reference[at] ? 0 : 1;
                    }
                }
            }
        }

        Assert.True(inexact <= 61, $"{inexact} of 6144 bytes differ from PyTorch's by one (measured: 1; at most 1% allowed)");
        Assert.All(Enumerable.Range(0, width), x => Assert.Equal(0, rgb[x * 3]));   // the top border

        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        Assert.True(doc.RootElement.GetProperty("decode_seconds").GetDouble() > 0);
        Assert.Equal(Path.Combine(model, "vae"), doc.RootElement.GetProperty("vae").GetString());
    }

    [Fact]
    public void VaeFlagDecodesACheckpointAsTheFolderDoesAndOneImageHasNoBorder()
    {
        string model = CliRunner.PipelineFolder(), dir = CliRunner.TempDir();
        string a = Path.Combine(dir, "a.safetensors"), b = Path.Combine(dir, "b.safetensors"), png = Path.Combine(dir, "one.png");
        string[] common = ["--classes", "7", "--steps", "3", "--threads", "1", "--quiet"];
        var (code, _, err) = CliRunner.Run(["sample", "--model", model, "--save-image", a, "--out", png, .. common]);
        Assert.True(code == 0, err);
        (code, _, err) = CliRunner.Run(["sample", "--model", CliRunner.TinyDit, "--vae", Path.Combine(model, "vae"), "--save-image", b, .. common]);
        Assert.True(code == 0, err);
        Tensor fromFolder = SafeTensors.Load(a).Tensors["image"];
        Assert.Equal(new[] { 1, 3, 32, 32 }, fromFolder.Shape.ToArray());
        Assert.True(fromFolder.Data.AsSpan().SequenceEqual(SafeTensors.Load(b).Tensors["image"].Data));
        (int width, int height, _) = DecodePng(File.ReadAllBytes(png));
        Assert.Equal((32, 32), (width, height));             // torchvision's make_grid returns a single image unpadded
    }

    [Fact]
    public void MissingOrMismatchedVaeIsRefusedBeforeSampling()
    {
        string dir = CliRunner.TempDir();
        string png = Path.Combine(dir, "x.png"), image = Path.Combine(dir, "x.safetensors");

        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--save-image", image);
        Assert.Equal(2, code);
        Assert.Contains("--vae PATH", err, StringComparison.Ordinal);
        Assert.Contains("stabilityai/sd-vae-ft-ema", err, StringComparison.Ordinal);

        // A diffusers vae/ folder of 8 latent channels (hashed weights) for the 4-channel DiT.
        string wide = Path.Combine(CliRunner.TempDir(), "wide-vae");
        Directory.CreateDirectory(wide);
        SafeTensors.Save(Path.Combine(wide, "diffusion_pytorch_model.safetensors"), VaeWeights.HashedFile(new VaeConfig([32, 32], 1, 32, 8)).Tensors);
        File.WriteAllText(Path.Combine(wide, "config.json"),
            """{"_class_name": "AutoencoderKL", "block_out_channels": [32, 32], "layers_per_block": 1, "norm_num_groups": 32, "latent_channels": 8, "out_channels": 3, "scaling_factor": 0.5}""");
        (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--vae", wide, "--out", png);
        Assert.True(code == 2, err);
        Assert.Contains(wide, err, StringComparison.Ordinal);
        Assert.Contains("8-channel latents", err, StringComparison.Ordinal);
        Assert.Contains("samples 4 channels", err, StringComparison.Ordinal);

        (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--vae", wide, "--save-tensor", image);
        Assert.Equal(2, code);
        Assert.Contains("--vae", err, StringComparison.Ordinal);
        Assert.Contains("neither is given", err, StringComparison.Ordinal);

        (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--vae", Path.Combine(dir, "none"), "--out", png);
        Assert.Equal(2, code);
        Assert.Contains("no such file or folder", err, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void InfoPrintsTheVaeOfAFolderAndOfVaeFlag()
    {
        string model = CliRunner.PipelineFolder();
        var (code, output, err) = CliRunner.Run("info", "--model", model);
        Assert.True(code == 0, err);
        Assert.Contains("depth:        2", output, StringComparison.Ordinal);
        Assert.Contains("vae config:   channels [16, 32, 32], layers_per_block 1, 8 groups, 4 latent -> 3 out, scaling 0.18215", output, StringComparison.Ordinal);

        (code, output, err) = CliRunner.Run("info", "--vae", Path.Combine(model, "vae"));
        Assert.True(code == 0, err);
        Assert.Contains("vae config:   channels [16, 32, 32], layers_per_block 1, 8 groups, 4 latent -> 3 out, scaling 0.18215", output, StringComparison.Ordinal);
        Assert.Contains("vae weights:  diffusers", output, StringComparison.Ordinal);
        Assert.DoesNotContain("depth:", output, StringComparison.Ordinal);
    }

    /// <summary>Max absolute error within <paramref name="tol"/> of the reference's largest magnitude.</summary>
    private static void AssertClose(float[] expected, float[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs((double)v));
        double err = expected.Zip(actual, (e, a) => Math.Abs((double)a - e)).Max();
        Assert.True(scale > 0, $"{what}: reference is all zeros");
        Assert.True(err <= tol * scale, $"{what}: max abs error {err:E3} exceeds {tol:E1} x {scale:E3}");
    }

    /// <summary>Reads an 8-bit RGB PNG of one IDAT chunk with filter 0 on every row (what Png.Encode writes).</summary>
    private static (int Width, int Height, byte[] Rgb) DecodePng(byte[] png)
    {
        int Be(int at) => (png[at] << 24) | (png[at + 1] << 16) | (png[at + 2] << 8) | png[at + 3];
        int width = Be(16), height = Be(20);
        Assert.Equal(8, png[24]);
        Assert.Equal(2, png[25]);
        int idat = 33;
        Assert.Equal("IDAT", System.Text.Encoding.ASCII.GetString(png, idat + 4, 4));
        using var z = new ZLibStream(new MemoryStream(png, idat + 8, Be(idat)), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        byte[] rows = raw.ToArray();
        Assert.Equal(height * ((width * 3) + 1), rows.Length);
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            Assert.Equal(0, rows[y * ((width * 3) + 1)]);
            Array.Copy(rows, (y * ((width * 3) + 1)) + 1, rgb, y * width * 3, width * 3);
        }

        return (width, height, rgb);
    }
}
