// DitCache from a program: the embedded Fashion-MNIST DiT draws one image of each of four classes in 20 DDIM steps,
// FoCa-accelerated (interval 3), reports its progress and writes samples.png. README.md, "Use it from your program",
// shows the same lines (a test checks that they match).
using DitCache;

// <quickstart>
var pipeline = DitPipeline.Load();              // the embedded Fashion-MNIST DiT; or a checkpoint file or diffusers folder
var options = new SamplingOptions { Classes = [0, 1, 2, 3], Steps = 20, Accelerator = "foca:n=3" };
var progress = new Progress<SamplingProgress>(p => Console.Error.WriteLine($"step {p.Step} of {p.Steps}"));
SampledImages images = pipeline.Sample(options, progress, CancellationToken.None);
File.WriteAllBytes("samples.png", images.ToPng());
// </quickstart>

Console.WriteLine($"wrote samples.png: {images.Classes.Count} images, {images.ComputedSteps} of {options.Steps} steps computed, {images.FullFlops / images.Flops:F2}x fewer FLOPs");
