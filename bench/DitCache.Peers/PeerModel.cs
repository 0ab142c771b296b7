using System;
using System.IO;
using System.Text.Json;

namespace DitCache.Peers;

/// <summary>
/// The shape of an exported DiT as tools/bench/export_peers.py describes it in the JSON file beside the export: the
/// fixed batch, channels in and out, latent size and the null class (labels fed for the unconditional half of CFG).
/// </summary>
internal sealed record PeerShape(int Batch, int InChannels, int OutChannels, int InputSize, int NullClass)
{
    public int Image => InChannels * InputSize * InputSize;

    public int OutImage => OutChannels * InputSize * InputSize;

    /// <summary>Reads MODEL.json; one clear line when it is missing or incomplete.</summary>
    public static PeerShape Read(string model)
    {
        string path = model + ".json";
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path} not found: export the model with tools/bench/export_peers.py, which writes it beside the export");
        }

        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(path));
        JsonElement r = doc.RootElement;
        int Get(string name) => r.TryGetProperty(name, out JsonElement v) && v.TryGetInt32(out int i)
            ? i
            : throw new InvalidOperationException($"{path}: no integer '{name}' (expected batch, in_channels, out_channels, input_size, null_class); re-export with tools/bench/export_peers.py");
        return new PeerShape(Get("batch"), Get("in_channels"), Get("out_channels"), Get("input_size"), Get("null_class"));
    }
}

/// <summary>An exported DiT in a peer engine, at the fixed batch of its export.</summary>
internal interface IPeerModel : IDisposable
{
    PeerShape Shape { get; }

    /// <summary>
    /// A forward bound to fixed buffers: x (B, C, H, W), t (B), y (B) in, output (B, out, H, W) out. Each
    /// <see cref="IPeerRun.Run"/> reads the buffers' current contents.
    /// </summary>
    IPeerRun Bind(float[] x, float[] t, long[] y, float[] output);
}

/// <summary>One bound forward.</summary>
internal interface IPeerRun : IDisposable
{
    void Run();
}
