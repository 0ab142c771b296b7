using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>
/// <c>--model FOLDER</c> (the diffusers layout of tests/TestData/diffusers/, tools/reference/make_diffusers_fixtures.py)
/// through sample and info, and ImageNet class names in <c>--classes</c>.
/// </summary>
public class DiffusersAndClassNameTests
{
    private static string Folder => CliRunner.Data("diffusers", "tiny-dit");

    [Fact]
    public void InfoPrintsTheTransformerConfigWeightsAndVae()
    {
        var (code, output, err) = CliRunner.Run("info", "--model", Folder);
        Assert.True(code == 0, err);
        Assert.Contains("depth:        2", output, StringComparison.Ordinal);
        Assert.Contains($"transformer:  {Path.Combine(Folder, "transformer", "config.json")} (Transformer2DModel: 4 heads x 16, 2 layers, patch 2, sample 8, 4 -> 8 channels, 10 classes)", output, StringComparison.Ordinal);
        Assert.Contains($"weights:      {Path.Combine(Folder, "transformer", "diffusion_pytorch_model.safetensors")}", output, StringComparison.Ordinal);
        Assert.Contains("vae:          none (no vae/ folder beside transformer/)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void FolderSamplesWhatTheOfficialCheckpointSamples()
    {
        string dir = CliRunner.TempDir();
        // The official checkpoint without its stored pos_embed: regenerated from --input-size as the folder's is.
        TensorFile official = SafeTensors.Load(CliRunner.TinyDit);
        string noPos = Path.Combine(dir, "official.safetensors");
        SafeTensors.Save(noPos, official.Tensors.Where(kv => kv.Key != "pos_embed").ToDictionary(kv => kv.Key, kv => kv.Value), official.Metadata);
        string a = Path.Combine(dir, "folder.safetensors"), b = Path.Combine(dir, "official-sample.safetensors");
        string[] common = ["--classes", "3,7", "--steps", "6", "--cfg", "4", "--cache", "foca:n=3", "--threads", "1", "--quiet"];
        var (code, _, err) = CliRunner.Run(["sample", "--model", Folder, "--save-tensor", a, .. common]);
        Assert.True(code == 0, err);
        (code, _, err) = CliRunner.Run(["sample", "--model", noPos, "--input-size", "8", "--save-tensor", b, .. common]);
        Assert.True(code == 0, err);
        Assert.True(SafeTensors.Load(a).Tensors["sample"].Data.AsSpan().SequenceEqual(SafeTensors.Load(b).Tensors["sample"].Data));
    }

    [Fact]
    public void BenchReadsTheFolder()
    {
        string dir = Path.Combine(CliRunner.TempDir(), "bench");
        var (code, output, err) = CliRunner.Run("bench", "--model", Folder, "--cache", "fora:n=2", "--classes", "3", "--samples", "2",
            "--steps", "2", "--shadow-images", "0", "--threads", "1", "--out", dir);
        Assert.True(code == 0, err);
        Assert.Contains("no quality model scores 8x8x4 images of 10 classes", output, StringComparison.Ordinal);
        Assert.Contains(Folder, File.ReadAllText(Path.Combine(dir, "results.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void FolderErrorsAreOneLineWithExitCodes()
    {
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TempDir(), "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("not a diffusers DiT folder", err, StringComparison.Ordinal);
        (code, _, err) = CliRunner.Run("info", "--model", Folder, "--heads", "8");
        Assert.Equal(2, code);
        Assert.Contains("--heads 8 contradicts", err, StringComparison.Ordinal);
    }

    [Fact]
    public void ImageNetNamesResolveForAThousandClassModel()
    {
        Assert.Equal([207, 207, 281, 5, 134], SampleCommand.ParseClasses("207, golden retriever,\"Tabby Cat\",torpedo,134", 1000));
        Assert.Equal([0, 999], SampleCommand.ParseClasses("tench,toilet tissue", 1000));
        Assert.Equal([3, 7], SampleCommand.ParseClasses("3,7", 10));
    }

    [Fact]
    public void NamesAreRefusedWithHelp()
    {
        var unknown = Assert.Throws<DitCacheException>(() => SampleCommand.ParseClasses("golden retreiver", 1000));
        Assert.StartsWith("--classes: 'golden retreiver' is neither a class id nor an ImageNet class name (names serve 1000-class models); closest names: 'golden retriever' (207)", unknown.Message, StringComparison.Ordinal);
        Assert.Equal(2, unknown.ExitCode);
        var ambiguous = Assert.Throws<DitCacheException>(() => SampleCommand.ParseClasses("Crane", 1000));
        Assert.Equal("--classes: 'Crane' names 2 ImageNet classes: 134 (crane), 517 (crane); give the class id instead", ambiguous.Message);
        var notImageNet = Assert.Throws<DitCacheException>(() => SampleCommand.ParseClasses("3,tabby", 10));
        Assert.Contains("'tabby' is not a class label", notImageNet.Message, StringComparison.Ordinal);
        Assert.Contains("class names apply to 1000-class ImageNet models only", notImageNet.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownNamesFailBeforeTheModelLoads()
    {
        // The model path does not exist: the --classes error comes first.
        var (code, _, err) = CliRunner.Run("sample", "--model", Path.Combine(CliRunner.TempDir(), "absent.pt"), "--classes", "goldne retriever", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("'goldne retriever' is neither a class id nor an ImageNet class name", err, StringComparison.Ordinal);
        (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "3,tabby", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("class names apply to 1000-class ImageNet models only", err, StringComparison.Ordinal);
    }

    [Fact]
    public void SampleResolvesNamesThroughTheModelsClassCount()
    {
        string dir = CliRunner.TempDir();
        string model = Path.Combine(dir, "imagenet-tiny.safetensors");
        TensorFile random = DitWeights.RandomFile(new DitConfig(1, 32, 2, 2, 4, 4, true, 1000), seed: 3);
        SafeTensors.Save(model, random.Tensors, random.Metadata);
        string report = Path.Combine(dir, "report.json");
        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--classes", "golden retriever,1", "--steps", "1", "--threads", "1",
            "--report", report, "--quiet");
        Assert.True(code == 0, err);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        Assert.Equal([207, 1], doc.RootElement.GetProperty("classes").EnumerateArray().Select(e => e.GetInt32()));
    }
}
