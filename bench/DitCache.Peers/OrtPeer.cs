using Microsoft.ML.OnnxRuntime;

namespace DitCache.Peers;

/// <summary>
/// ONNX Runtime (CPU execution provider) at its best settings for this job: all graph optimizations
/// (ORT_ENABLE_ALL, which fuses LayerNormalization, GELU, MatMul+Add and the like), sequential execution, THREADS
/// intra-op threads and one inter-op thread. Inputs and output are OrtValues over the caller's arrays (no copies).
/// </summary>
internal sealed class OrtPeer : IPeerModel
{
    private static readonly string[] InputNames = ["x", "t", "y"];
    private static readonly string[] OutputNames = ["out"];
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;

    public OrtPeer(string path, int threads)
    {
        Shape = PeerShape.Read(path);
        _options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
        };
        _session = new InferenceSession(path, _options);
    }

    public PeerShape Shape { get; }

    public static string Describe(int threads) =>
        $"onnxruntime {OrtEnv.Instance().GetVersionString()} cpu graph=ORT_ENABLE_ALL execution=sequential intra_op={threads} inter_op=1";

    public IPeerRun Bind(float[] x, float[] t, long[] y, float[] output)
    {
        PeerShape s = Shape;
        return new Run(_session,
            [
                OrtValue.CreateTensorValueFromMemory(x, [s.Batch, s.InChannels, s.InputSize, s.InputSize]),
                OrtValue.CreateTensorValueFromMemory(t, [s.Batch]),
                OrtValue.CreateTensorValueFromMemory(y, [s.Batch]),
            ],
            OrtValue.CreateTensorValueFromMemory(output, [s.Batch, s.OutChannels, s.InputSize, s.InputSize]));
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }

    private sealed class Run(InferenceSession session, OrtValue[] inputs, OrtValue output) : IPeerRun
    {
        private readonly RunOptions _runOptions = new();
        private readonly OrtValue[] _outputs = [output];

        void IPeerRun.Run() => session.Run(_runOptions, InputNames, inputs, OutputNames, _outputs);

        public void Dispose()
        {
            foreach (OrtValue v in inputs)
            {
                v.Dispose();
            }

            output.Dispose();
            _runOptions.Dispose();
        }
    }
}
