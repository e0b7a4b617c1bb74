using PureVlm;
using PureVlm.Formats.Images;

// The embedded demo model; pass a directory to load a Hugging Face PaliGemma or LLaVA checkpoint instead.
using var model = VlmModel.Load();
var image = ImageLoader.Load(args.Length > 0 ? args[0] : Path.Combine(VlmModel.DefaultModelPath, "samples", "04-red-circle.png"));

// Streamed, piece by piece, as the tokens come.
await foreach (var piece in model.GenerateStreaming(image, "caption en"))
    Console.Write(piece);
Console.WriteLine();

// The whole answer at once, with each token's probability and the boxes of a detect prompt.
var answer = model.Generate(image, "detect circle");
Console.WriteLine($"{answer.Text} ({answer.Tokens.Count} tokens, each with its probability)");
foreach (var box in answer.Detections)
    Console.WriteLine($"{box.Label}: [{string.Join(", ", box.Box.Select(v => v.ToString("0")))}]");
