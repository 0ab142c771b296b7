using System;
using System.IO;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Models.Tests;

/// <summary>
/// The VAE decoder against PyTorch (tools/reference/make_vae_fixtures.py, our reference written from the diffusers and
/// CompVis code): a tiny config in all three key namings, and the real sd-vae shapes on hashed weights.
/// </summary>
public class VaeTests
{
    // float32 round-off through 20-30 convolutions, GroupNorms and one softmax: measured max |error| 1.3e-6 (tiny) and
    // 1.7e-6 (sd-vae shapes) of the largest output. 2e-5 is about 10x above that and far below the O(1) error of a
    // wrong layer, a transposed weight or a swapped up block.
    private const double Tol = 2e-5;

    private static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "vae", name);

    private static TensorFile Golden(string name) => SafeTensors.Load(PathOf(name));

    private static VaeConfig TinyConfig => VaeConfig.FromJsonFile(PathOf("tiny_config.json"));

    [Theory]
    [InlineData("tiny_diffusers.safetensors", "diffusers")]
    [InlineData("tiny_legacy.safetensors", "diffusers (legacy attention names)")]
    [InlineData("tiny_compvis.safetensors", "CompVis/ldm")]
    [InlineData("tiny_compvis.ckpt", "CompVis/ldm")]
    public void Tiny_decoder_matches_pytorch_in_every_naming(string file, string naming)
    {
        VaeWeights weights = VaeWeights.FromFile(Checkpoint.Load(PathOf(file)), TinyConfig);
        Assert.Equal(naming, weights.Naming);
        TensorFile golden = Golden("tiny_golden.safetensors");
        Tensor images = new VaeDecoder(weights, new ManagedGemm(2)).Decode(golden.Tensors["latents"]);
        Assert.Equal([2, 3, 32, 32], images.Shape);
        Models.Tests.Golden.Close(golden.Tensors["images"].Data, images.Data, Tol, $"VAE images from {file}");
    }

    [Fact]
    public void Config_is_read_from_the_weight_shapes_of_a_bare_file()
    {
        foreach (string file in new[] { "tiny_diffusers.safetensors", "tiny_compvis.safetensors" })
        {
            // The groups are in no shape: the tiny model has 8, not the SD-family 32.
            VaeConfig inferred = VaeWeights.InferConfig(Checkpoint.Load(PathOf(file)), normNumGroups: 8);
            VaeConfig json = TinyConfig;
            Assert.Equal(json.BlockOutChannels, inferred.BlockOutChannels);
            Assert.Equal(json.LayersPerBlock, inferred.LayersPerBlock);
            Assert.Equal(json.LatentChannels, inferred.LatentChannels);
            Assert.Equal(json.OutChannels, inferred.OutChannels);
            Assert.Equal(VaeConfig.SdScalingFactor, inferred.ScalingFactor);
            Assert.True(inferred.UsePostQuantConv && inferred.MidBlockAddAttention);
        }
    }

    [Fact]
    public void Load_reads_a_diffusers_folder_and_a_file_with_its_config_beside_it()
    {
        string dir = Directory.CreateTempSubdirectory("ditcache-vae-").FullName;
        try
        {
            // A pipeline folder: vae/config.json + vae/diffusion_pytorch_model.safetensors.
            string vae = Directory.CreateDirectory(Path.Combine(dir, "vae")).FullName;
            File.Copy(PathOf("tiny_config.json"), Path.Combine(vae, "config.json"));
            File.Copy(PathOf("tiny_diffusers.safetensors"), Path.Combine(vae, "diffusion_pytorch_model.safetensors"));
            TensorFile golden = Golden("tiny_golden.safetensors");
            foreach (string path in new[] { dir, vae, Path.Combine(vae, "diffusion_pytorch_model.safetensors") })
            {
                VaeWeights weights = VaeWeights.Load(path);
                Assert.Equal(8, weights.Config.NormNumGroups);
                Tensor images = new VaeDecoder(weights, new ManagedGemm(1)).Decode(golden.Tensors["latents"]);
                Models.Tests.Golden.Close(golden.Tensors["images"].Data, images.Data, Tol, $"VAE loaded from {path}");
            }

            var e = Assert.Throws<DitCacheException>(() => VaeWeights.Load(Path.Combine(dir, "..", Path.GetFileName(dir), "vae", "missing")));
            Assert.Contains("missing", e.Message, StringComparison.Ordinal);
            string empty = Directory.CreateDirectory(Path.Combine(dir, "empty")).FullName;
            e = Assert.Throws<DitCacheException>(() => VaeWeights.Load(empty));
            Assert.Contains("no VAE weights in this folder", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Real_sd_vae_shapes_on_hashed_weights_match_pytorch()
    {
        VaeConfig config = VaeConfig.FromJsonFile(PathOf("sdvae_config.json"));
        Assert.Equal(VaeConfig.SdVae.BlockOutChannels, config.BlockOutChannels);
        Assert.Equal((2, 32, 4, 3, 0.18215f), (config.LayersPerBlock, config.NormNumGroups, config.LatentChannels, config.OutChannels, config.ScalingFactor));
        TensorFile file = VaeWeights.HashedFile(config);
        Assert.Equal(config.BlockOutChannels, VaeWeights.InferConfig(file).BlockOutChannels);
        var weights = VaeWeights.FromFile(file, config);
        TensorFile golden = Golden("sdvae_hashed_golden.safetensors");
        Tensor images = new VaeDecoder(weights, new ManagedGemm(2)).Decode(golden.Tensors["latents"]);
        Assert.Equal([1, 3, 32, 32], images.Shape);
        Models.Tests.Golden.Close(golden.Tensors["images"].Data, images.Data, Tol, "sd-vae shapes, hashed weights");
    }

    [Fact]
    public void Decoding_one_image_at_a_time_reuses_the_workspace_and_gives_the_same_images()
    {
        VaeWeights weights = VaeWeights.FromFile(Checkpoint.Load(PathOf("tiny_diffusers.safetensors")), TinyConfig);
        var decoder = new VaeDecoder(weights, new ManagedGemm(1));
        TensorFile golden = Golden("tiny_golden.safetensors");
        Tensor both = decoder.Decode(golden.Tensors["latents"]);
        var second = new Tensor(golden.Tensors["latents"].Data.AsSpan(4 * 64).ToArray(), 1, 4, 8, 8);
        Tensor alone = decoder.Decode(second);
        Assert.Equal(both.Data.AsSpan(3 * 32 * 32).ToArray(), alone.Data);
        // Another latent size gets its own buffers (16x8 latent → 64x32 image) and the workspace formula covers it.
        Tensor wide = decoder.Decode(new Tensor(new float[4 * 16 * 8], 1, 4, 16, 8));
        Assert.Equal([1, 3, 64, 32], wide.Shape);
        Assert.True(VaeDecoder.WorkspaceBytes(weights.Config, 16, 8, 1) > 3L * 32 * 64 * 32 * sizeof(float));
    }

    [Fact]
    public void Config_json_rejects_what_the_decoder_does_not_compute()
    {
        string baseJson = File.ReadAllText(PathOf("tiny_config.json"));
        (string from, string to, string message)[] cases =
        [
            ("\"_class_name\": \"AutoencoderKL\"", "\"_class_name\": \"AutoencoderTiny\"", "AutoencoderKL only"),
            ("\"act_fn\": \"silu\"", "\"act_fn\": \"gelu\"", "act_fn is \"gelu\""),
            ("\"layers_per_block\": 1", "\"layers_per_block\": 1, \"latents_mean\": [0, 0]", "latents_mean is set"),
            ("\"norm_num_groups\": 8", "\"norm_num_groups\": 12", "not a positive multiple of norm_num_groups 12"),
            ("\"UpDecoderBlock2D\"\n", "\"AttnUpDecoderBlock2D\"\n", "expected 3 x \"UpDecoderBlock2D\""),
        ];
        foreach ((string from, string to, string message) in cases)
        {
            Assert.Contains(from, baseJson, StringComparison.Ordinal);
            var e = Assert.Throws<DitCacheException>(() => VaeConfig.FromJson(baseJson.Replace(from, to, StringComparison.Ordinal), "cfg.json"));
            Assert.Contains(message, e.Message, StringComparison.Ordinal);
            Assert.StartsWith("cfg.json: ", e.Message, StringComparison.Ordinal);
        }

        // Keys absent take diffusers' defaults: the sd-vae-ft-* configs carry no scaling_factor.
        VaeConfig defaults = VaeConfig.FromJson("{\"block_out_channels\": [32, 64]}", "cfg.json");
        Assert.Equal((1, 32, 4, 3, 0.18215f, true), (defaults.LayersPerBlock, defaults.NormNumGroups, defaults.LatentChannels, defaults.OutChannels, defaults.ScalingFactor, defaults.UsePostQuantConv));
    }

    [Fact]
    public void Weights_that_disagree_with_the_config_are_rejected_with_the_key()
    {
        TensorFile file = Checkpoint.Load(PathOf("tiny_diffusers.safetensors"));
        VaeConfig tiny = TinyConfig;
        var e = Assert.Throws<DitCacheException>(() => VaeWeights.FromFile(file, tiny with { LayersPerBlock = 2 }));
        Assert.Contains("decoder.up_blocks.0.resnets.2.norm1.weight' is missing", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<DitCacheException>(() => VaeWeights.FromFile(file, tiny with { LayersPerBlock = 0 }));
        Assert.Contains("unexpected tensor(s) decoder.up_blocks.0.resnets.1.conv1.bias", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<DitCacheException>(() => VaeWeights.FromFile(file, tiny with { BlockOutChannels = [16, 32, 64] }));
        Assert.Contains("decoder.conv_in.weight' has shape [32, 4, 3, 3]; expected [64, 4, 3, 3]", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<DitCacheException>(() => VaeWeights.FromFile(file, tiny with { UsePostQuantConv = false }));
        Assert.Contains("'post_quant_conv.weight' is present but the config says use_post_quant_conv false", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_config_without_post_quant_conv_or_mid_attention_loads_without_those_tensors()
    {
        VaeConfig config = new([16, 32], 1, 8, 16, ScalingFactor: 1.5305f, ShiftFactor: 0.0609f, UsePostQuantConv: false, MidBlockAddAttention: false);
        TensorFile file = VaeWeights.HashedFile(config);
        Assert.DoesNotContain("post_quant_conv.weight", file.Tensors.Keys);
        VaeWeights weights = VaeWeights.FromFile(file, config);
        Assert.Null(weights.PostQuantConv);
        Assert.Null(weights.MidAttention);
        Assert.Equal([1, 3, 8, 8], new VaeDecoder(weights, new ManagedGemm(1)).Decode(Tensor.Zeros(1, 16, 4, 4)).Shape);

        // A bare 16-channel file cannot say its scaling factor.
        var e = Assert.Throws<DitCacheException>(() => VaeWeights.InferConfig(file));
        Assert.Contains("a 16-channel VAE without a config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_without_a_decoder_is_rejected()
    {
        var file = new TensorFile("enc.safetensors", new System.Collections.Generic.Dictionary<string, Tensor> { ["encoder.conv_in.weight"] = Tensor.Zeros(4, 3, 3, 3) },
            new System.Collections.Generic.Dictionary<string, string>(), new System.Collections.Generic.Dictionary<string, StoredDType> { ["encoder.conv_in.weight"] = StoredDType.F32 });
        var e = Assert.Throws<DitCacheException>(() => VaeWeights.FromFile(file));
        Assert.Contains("enc.safetensors: holds no VAE decoder", e.Message, StringComparison.Ordinal);
    }
}
