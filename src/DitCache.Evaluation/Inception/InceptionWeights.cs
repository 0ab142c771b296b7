using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Evaluation.Inception;

/// <summary>One BasicConv2d of the FID Inception with its BatchNorm folded in: <c>relu(conv(x, W') + b')</c>.</summary>
/// <param name="Name">The module name, e.g. <c>Mixed_5b.branch5x5_2</c>.</param>
/// <param name="Shape">The conv's geometry at the image size it runs on (height and width filled in per call).</param>
/// <param name="Weight">[out, in, kh, kw]: the conv weight scaled per output channel by γ/√(var + 0.001).</param>
/// <param name="Bias">[out]: β − mean·γ/√(var + 0.001).</param>
public sealed record FoldedConv(string Name, ConvShape Shape, float[] Weight, float[] Bias);

/// <summary>
/// The weights of the FID Inception-v3 (docs/methods.md §9.4) as pytorch-fid distributes them,
/// <c>pt_inception-2015-12-05-6726825d.pth</c> (the TensorFlow 2015-12-05 graph ported to torchvision's module names),
/// or any file with those keys: 94 BasicConv2d modules, each <c>{name}.conv.weight</c> and <c>{name}.bn.{weight, bias,
/// running_mean, running_var}</c> (<c>num_batches_tracked</c> ignored), plus <c>fc.weight</c> [1008, 2048] and
/// <c>fc.bias</c>, which FID never uses (checked when present, never read). Every BatchNorm (eps 0.001) is folded into its
/// conv in float64 when the file is loaded.
/// </summary>
public sealed class InceptionWeights
{
    /// <summary>The BatchNorm epsilon of every layer (TensorFlow's 0.001).</summary>
    public const double BatchNormEps = 0.001;

    /// <summary>Classes of the TensorFlow graph's classifier, the shape of <c>fc.weight</c>'s first axis.</summary>
    public const int TensorFlowClasses = 1008;

    private const string Remedy = "pass pytorch-fid's FID Inception weights, pt_inception-2015-12-05-6726825d.pth (https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth)";

    private readonly Dictionary<string, FoldedConv> _convs;

    private InceptionWeights(string source, Dictionary<string, FoldedConv> convs)
    {
        Source = source;
        _convs = convs;
    }

    /// <summary>The file the weights came from.</summary>
    public string Source { get; }

    /// <summary>The folded conv of module <paramref name="name"/> (e.g. <c>Conv2d_1a_3x3</c>).</summary>
    public FoldedConv this[string name] => _convs[name];

    /// <summary>Every conv module: name, in, out, kernel (kh, kw), stride, padding (ph, pw); torchvision's Inception3 with pytorch-fid's blocks.</summary>
    public static IReadOnlyList<(string Name, int In, int Out, int Kh, int Kw, int Stride, int Ph, int Pw)> Modules { get; } = BuildModules();

    /// <summary>Loads and folds the weights of <paramref name="path"/> (.pth/.pt as torch.save writes it, or .safetensors).</summary>
    /// <exception cref="DitCacheException">The file is missing or unreadable, a key is missing or unexpected, or a shape differs; the message names it.</exception>
    public static InceptionWeights Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new DitCacheException($"--inception {path}: no such file; {Remedy}", exitCode: 2);
        }

        return FromFile(Checkpoint.Load(path));
    }

    /// <summary>Validates every key and shape of <paramref name="file"/>, then reads and folds the weights.</summary>
    /// <exception cref="DitCacheException">A key is missing or unexpected, or a shape differs; the message names it.</exception>
    public static InceptionWeights FromFile(TensorFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var expected = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach ((string name, int cin, int cout, int kh, int kw, _, _, _) in Modules)
        {
            expected[name + ".conv.weight"] = [cout, cin, kh, kw];
            foreach (string part in new[] { "weight", "bias", "running_mean", "running_var" })
            {
                expected[$"{name}.bn.{part}"] = [cout];
            }
        }

        if (file.Entries.Keys.Any(k => k.StartsWith("AuxLogits.", StringComparison.Ordinal))
            || (file.Entries.TryGetValue("fc.weight", out TensorEntry? fc) && fc.Shape.Length == 2 && fc.Shape[0] == 1000))
        {
            throw new DitCacheException(
                $"{file.Source}: holds torchvision's ImageNet Inception-v3 (1000 classes{(file.Entries.ContainsKey("AuxLogits.fc.weight") ? ", auxiliary classifier" : "")}), not the FID Inception, whose features FID statistics are computed with; {Remedy}",
                exitCode: 2);
        }

        var optional = new Dictionary<string, int[]>(StringComparer.Ordinal) { ["fc.weight"] = [TensorFlowClasses, 2048], ["fc.bias"] = [TensorFlowClasses] };
        foreach ((string key, TensorEntry entry) in file.Entries)
        {
            if (key.EndsWith(".num_batches_tracked", StringComparison.Ordinal) && expected.ContainsKey(key[..^"num_batches_tracked".Length] + "running_mean"))
            {
                continue;
            }

            int[]? shape = expected.GetValueOrDefault(key) ?? optional.GetValueOrDefault(key);
            if (shape is null)
            {
                throw new DitCacheException($"{file.Source}: unexpected tensor '{TensorFile.Printable(key)}' (not a module of the FID Inception-v3); {Remedy}", exitCode: 2);
            }

            if (!entry.Shape.SequenceEqual(shape))
            {
                throw new DitCacheException(
                    $"{file.Source}: tensor '{key}' has shape [{string.Join(", ", entry.Shape)}] but the FID Inception-v3 needs [{string.Join(", ", shape)}]; {Remedy}",
                    exitCode: 2);
            }
        }

        string? missing = expected.Keys.FirstOrDefault(k => !file.Entries.ContainsKey(k));
        if (missing is not null)
        {
            int count = expected.Keys.Count(k => !file.Entries.ContainsKey(k));
            throw new DitCacheException($"{file.Source}: has no tensor '{missing}'{(count > 1 ? $" (and {count - 1} more of the FID Inception's keys are missing)" : "")}; {Remedy}", exitCode: 2);
        }

        var convs = new Dictionary<string, FoldedConv>(StringComparer.Ordinal);
        foreach ((string name, int cin, int cout, int kh, int kw, int stride, int ph, int pw) in Modules)
        {
            float[] w = file.Read(name + ".conv.weight").Data;
            float[] gamma = file.Read(name + ".bn.weight").Data, beta = file.Read(name + ".bn.bias").Data;
            float[] mean = file.Read(name + ".bn.running_mean").Data, variance = file.Read(name + ".bn.running_var").Data;
            int taps = cin * kh * kw;
            float[] folded = new float[w.Length], bias = new float[cout];
            for (int o = 0; o < cout; o++)
            {
                if (!(variance[o] >= 0) || !float.IsFinite(gamma[o]) || !float.IsFinite(beta[o]) || !float.IsFinite(mean[o]))
                {
                    throw new DitCacheException(
                        $"{file.Source}: {name}.bn holds a non-finite value or a negative running_var at channel {o} (var {variance[o]}, weight {gamma[o]}); the file is damaged: download it again",
                        exitCode: 2);
                }

                double scale = gamma[o] / Math.Sqrt(variance[o] + BatchNormEps);
                for (int t = 0; t < taps; t++)
                {
                    folded[(o * taps) + t] = (float)(w[(o * taps) + t] * scale);
                }

                bias[o] = (float)(beta[o] - (mean[o] * scale));
            }

            convs[name] = new FoldedConv(name, new ConvShape(cin, cout, 1, 1, kh, kw, stride, stride, ph, pw), folded, bias);
        }

        return new InceptionWeights(file.Source, convs);
    }

    /// <summary>
    /// The FID Inception's keys and shapes filled with the hashed values of tools/reference/inception_reference.py
    /// (<c>hashed_weights</c>): conv weights u·√(6/fan_in), BatchNorm weight 1 + 0.25·u, bias 0.2·u, running_mean 0.1·u,
    /// running_var 1 + 0.5·u, fc weight u·√(3/2048) and bias 0.1·u, u from <see cref="HashedUniform"/>; PyTorch and
    /// DitCache run the real shapes on identical random weights (tests, benchmarks).
    /// </summary>
    public static TensorFile HashedFile()
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        void Add(string key, int[] shape, Func<double, int, double> value)
        {
            Tensor t = Tensor.Zeros(shape);
            uint seed = HashedUniform.Seed(key);
            for (int i = 0; i < t.Length; i++)
            {
                t.Data[i] = (float)value(HashedUniform.At(seed, i), shape[0]);
            }

            tensors[key] = t;
        }

        foreach ((string name, int cin, int cout, int kh, int kw, _, _, _) in Modules)
        {
            double fan = cin * kh * kw;
            Add(name + ".conv.weight", [cout, cin, kh, kw], (u, _) => u * Math.Sqrt(6.0 / fan));
            Add(name + ".bn.weight", [cout], (u, _) => 1.0 + (0.25 * u));
            Add(name + ".bn.bias", [cout], (u, _) => 0.2 * u);
            Add(name + ".bn.running_mean", [cout], (u, _) => 0.1 * u);
            Add(name + ".bn.running_var", [cout], (u, _) => 1.0 + (0.5 * u));
        }

        Add("fc.weight", [TensorFlowClasses, 2048], (u, _) => u * Math.Sqrt(3.0 / 2048));
        Add("fc.bias", [TensorFlowClasses], (u, _) => 0.1 * u);
        return new TensorFile("hashed FID Inception-v3", tensors, new Dictionary<string, string>(), new Dictionary<string, StoredDType>());
    }

    private static List<(string, int, int, int, int, int, int, int)> BuildModules()
    {
        var m = new List<(string, int, int, int, int, int, int, int)>();
        void Conv(string name, int cin, int cout, int kh, int kw, int stride = 1, int ph = 0, int pw = 0) => m.Add((name, cin, cout, kh, kw, stride, ph, pw));

        Conv("Conv2d_1a_3x3", 3, 32, 3, 3, stride: 2);
        Conv("Conv2d_2a_3x3", 32, 32, 3, 3);
        Conv("Conv2d_2b_3x3", 32, 64, 3, 3, ph: 1, pw: 1);
        Conv("Conv2d_3b_1x1", 64, 80, 1, 1);
        Conv("Conv2d_4a_3x3", 80, 192, 3, 3);
        foreach ((string block, int cin, int pool) in new[] { ("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64) })
        {
            Conv(block + ".branch1x1", cin, 64, 1, 1);
            Conv(block + ".branch5x5_1", cin, 48, 1, 1);
            Conv(block + ".branch5x5_2", 48, 64, 5, 5, ph: 2, pw: 2);
            Conv(block + ".branch3x3dbl_1", cin, 64, 1, 1);
            Conv(block + ".branch3x3dbl_2", 64, 96, 3, 3, ph: 1, pw: 1);
            Conv(block + ".branch3x3dbl_3", 96, 96, 3, 3, ph: 1, pw: 1);
            Conv(block + ".branch_pool", cin, pool, 1, 1);
        }

        Conv("Mixed_6a.branch3x3", 288, 384, 3, 3, stride: 2);
        Conv("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1);
        Conv("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3, ph: 1, pw: 1);
        Conv("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3, stride: 2);
        foreach ((string block, int c7) in new[] { ("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192) })
        {
            Conv(block + ".branch1x1", 768, 192, 1, 1);
            Conv(block + ".branch7x7_1", 768, c7, 1, 1);
            Conv(block + ".branch7x7_2", c7, c7, 1, 7, pw: 3);
            Conv(block + ".branch7x7_3", c7, 192, 7, 1, ph: 3);
            Conv(block + ".branch7x7dbl_1", 768, c7, 1, 1);
            Conv(block + ".branch7x7dbl_2", c7, c7, 7, 1, ph: 3);
            Conv(block + ".branch7x7dbl_3", c7, c7, 1, 7, pw: 3);
            Conv(block + ".branch7x7dbl_4", c7, c7, 7, 1, ph: 3);
            Conv(block + ".branch7x7dbl_5", c7, 192, 1, 7, pw: 3);
            Conv(block + ".branch_pool", 768, 192, 1, 1);
        }

        Conv("Mixed_7a.branch3x3_1", 768, 192, 1, 1);
        Conv("Mixed_7a.branch3x3_2", 192, 320, 3, 3, stride: 2);
        Conv("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1);
        Conv("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7, pw: 3);
        Conv("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1, ph: 3);
        Conv("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3, stride: 2);
        foreach ((string block, int cin) in new[] { ("Mixed_7b", 1280), ("Mixed_7c", 2048) })
        {
            Conv(block + ".branch1x1", cin, 320, 1, 1);
            Conv(block + ".branch3x3_1", cin, 384, 1, 1);
            Conv(block + ".branch3x3_2a", 384, 384, 1, 3, pw: 1);
            Conv(block + ".branch3x3_2b", 384, 384, 3, 1, ph: 1);
            Conv(block + ".branch3x3dbl_1", cin, 448, 1, 1);
            Conv(block + ".branch3x3dbl_2", 448, 384, 3, 3, ph: 1, pw: 1);
            Conv(block + ".branch3x3dbl_3a", 384, 384, 1, 3, pw: 1);
            Conv(block + ".branch3x3dbl_3b", 384, 384, 3, 1, ph: 1);
            Conv(block + ".branch_pool", cin, 192, 1, 1);
        }

        return m;
    }
}
