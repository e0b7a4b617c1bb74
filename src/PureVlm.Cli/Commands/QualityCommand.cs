using System.Globalization;
using System.Text.Json;
using PureVlm.Formats;
using PureVlm.Inspection;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Cli.Commands;

static class QualityCommand
{
    const string Help = $$"""
        usage: purevlm quality [--model DIR|ID [--revision REV]] [--quantize 4|8|8,4] [--quantized DIR ...] [--prompts FILE.jsonl | --inputs FILE] [--max-tokens N] [--json]

        Compares quantized models with the model as stored (the reference): both answer each prompt greedily, then
        both run the prompt followed by the reference's answer and every next-token distribution is compared.
        Prints, per quantized model: mean and max KL divergence KL(P_reference || P_quantized) in nats, top-1
        agreement (positions where the most likely tokens agree), greedy answers identical (count), and for
        "detect ..." prompts the mean IoU of the boxes paired in order (a missing box counts 0).
        Without --model, the embedded demo model and its 24 samples.

        {{CliModel.OptionsHelp}}
          --quantize 4|8|8,4  quantize the reference at load to these widths, one model each (default 8,4 when
                              no --quantized is given)
          --quantized DIR     a checkpoint quantized on disk (weights-tools quantize, mlx-vlm), named by its folder;
                              repeatable
          --prompts FILE      JSON lines {"image": PATH, "prompt": TEXT}, image paths relative to the file
                              (default: samples/expected.jsonl in the model folder)
          --inputs FILE       instead of prompts, a safetensors file with input_ids (and pixel_values), as the test
                              fixtures' golden files hold: for checkpoints without a tokenizer; answers are token ids
          --max-tokens N      answer length (default 32)
          --json              one JSON object with every figure and each case's answers
        """;

    public static int Run(string[] args)
    {
        var (quantizedDirs, rest) = TakeRepeated(args, "--quantized");
        var cl = new CommandLine("quality", rest, ["--model", "--revision", "--quantize", "--prompts", "--inputs", "--max-tokens"], ["--json"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string dir = CliModel.Directory(cl);
        var widths = Widths(cl.Get("--quantize"), quantizedDirs.Count == 0);
        int maxTokens = cl.Int("--max-tokens", 1, 1 << 12) ?? 32;
        string? inputs = cl.Get("--inputs");
        if (inputs != null && cl.Get("--prompts") != null) throw new UsageException("give --prompts or --inputs, not both");
        string prompts = inputs ?? cl.Get("--prompts") ?? Path.Combine(dir, "samples", "expected.jsonl");

        bool interactive = !Console.IsErrorRedirected;
        void Status(string s) { if (interactive) Console.Error.Write($"\r{s}\u001b[K"); }
        var labels = widths.Select(b => $"Q{b}").Concat(quantizedDirs.Select(d => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))))).ToList();
        var recipes = widths.Select(b => (Recipe: (QuantizationRecipe?)new QuantizationRecipe(b), Dir: dir)).Concat(quantizedDirs.Select(d => (Recipe: (QuantizationRecipe?)null, Dir: d))).ToList();
        var results = new List<QualityResult>();
        int caseCount;
        if (inputs != null)
        {
            var (ids, pixels) = ReadInputs(inputs);
            caseCount = 1;
            using var reference = LoadedModel.Load(dir);
            if (reference.VisionLanguage is Models.IMultiCropVisionModel)
                throw new UsageException($"--inputs: {dir} is a Molmo model, whose images go in as crops; compare it with --prompts");
            for (int i = 0; i < labels.Count; i++)
            {
                Status($"{labels[i]}: loading and comparing...");
                using var quantized = LoadedModel.Load(recipes[i].Dir, recipes[i].Recipe);
                results.Add(QuantizationQuality.CompareIds(reference, quantized, labels[i], ids, pixels, maxTokens));
            }
        }
        else
        {
            var cases = ReadCases(prompts);
            caseCount = cases.Count;
            using var reference = VlmModel.Load(dir, s => Status($"loading: {s}..."));
            for (int i = 0; i < labels.Count; i++)
            {
                string label = labels[i];
                using var quantized = VlmModel.Load(recipes[i].Dir, s => Status($"loading {label}: {s}..."), quantize: recipes[i].Recipe);
                results.Add(QuantizationQuality.Compare(reference, quantized, label, cases, maxTokens, (k, n) => Status($"{label}: case {k}/{n}")));
            }
        }
        if (interactive) Console.Error.Write("\r\u001b[K");

        if (cl.Flag("--json")) Console.Out.WriteLine(JsonSerializer.Serialize(new
        {
            model = dir,
            prompts,
            cases = caseCount,
            results = results.Select(r => new
            {
                label = r.Label, positions = r.Positions, mean_kl = r.MeanKl, max_kl = r.MaxKl, top1_agreement = r.Top1Agreement,
                identical_answers = r.IdenticalAnswers, detect_cases = r.DetectCases, mean_iou = r.MeanIou,
                per_case = r.PerCase.Select(c => new { image = c.Case.ImagePath, prompt = c.Case.Prompt, reference = c.Reference, answer = c.Answer,
                    mean_kl = c.MeanKl, max_kl = c.MaxKl, positions = c.Positions, top1_agreed = c.Top1Agreed, iou = c.Iou }),
            }),
        }, CliJson.Options));
        else
        {
            Console.Out.WriteLine($"reference {dir}, {caseCount} prompt(s) from {prompts}");
            Console.Out.WriteLine($"{"model",-16} {"mean KL",9} {"max KL",9} {"top-1",7} {"identical",10} {"detect IoU",12}");
            foreach (var r in results)
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Label,-16} {r.MeanKl,9:F5} {r.MaxKl,9:F4} {r.Top1Agreement,7:P1} {$"{r.IdenticalAnswers}/{r.Cases}",10} {(r.MeanIou is double iou ? $"{iou:F3} ({r.DetectCases})" : "-"),12}"));
        }
        return 0;
    }

    static int[] Widths(string? value, bool byDefault)
    {
        if (value == null) return byDefault ? [8, 4] : [];
        var parts = value.Split(',');
        if (parts.Any(p => p is not ("4" or "8")) || parts.Distinct().Count() != parts.Length)
            throw new UsageException($"--quantize '{value}': expected 4, 8 or a list of them such as 8,4");
        return parts.Select(int.Parse).ToArray();
    }

    static (List<string> Values, string[] Others) TakeRepeated(string[] args, string option)
    {
        var values = new List<string>();
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] != option) { rest.Add(args[i]); continue; }
            if (i + 1 >= args.Length) throw new UsageException($"option '{option}' needs a value");
            values.Add(args[++i]);
        }
        return (values, rest.ToArray());
    }

    /// <summary>input_ids and, when present, pixel_values of a safetensors file.</summary>
    static (int[] Ids, Tensor? Pixels) ReadInputs(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.TryGet("input_ids", out var ids)) throw new InvalidModelFileException($"{path}: no tensor 'input_ids'");
        var values = new float[ids.ElementCount];
        ids.ReadFloats(0, values);
        return (values.Select(v => (int)v).ToArray(), file.TryGet("pixel_values", out var pixels) ? pixels.ToTensor() : null);
    }

    /// <summary>The JSON lines of a prompts file; each error names the file and line.</summary>
    static List<QualityCase> ReadCases(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"--prompts {path}: file not found");
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var cases = new List<QualityCase>();
        int line = 0;
        foreach (var text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement root;
            try { root = JsonDocument.Parse(text).RootElement; }
            catch (JsonException e) { throw new InvalidModelFileException($"{path}:{line}: not JSON ({e.Message.ReplaceLineEndings(" ")})"); }
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("image", out var image) || image.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.String)
                throw new InvalidModelFileException($"{path}:{line}: expected an object with string fields \"image\" and \"prompt\"");
            string imagePath = Path.Combine(folder, image.GetString()!);
            if (!File.Exists(imagePath)) throw new InvalidModelFileException($"{path}:{line}: image {imagePath} not found");
            cases.Add(new(imagePath, prompt.GetString()!));
        }
        if (cases.Count == 0) throw new InvalidModelFileException($"{path}: no prompts");
        return cases;
    }
}
