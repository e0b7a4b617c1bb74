using System.Globalization;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Cli.Commands;

static class InfoCommand
{
    const string Help = $$"""
        usage: purevlm info [--model DIR|ID [--revision REV]] [--layers]

        Prints the architecture (from config.json), the weights' dtypes, the parameter count and the memory
        of each part (vision tower, projector, language model, and lm_head when untied). Without --model, the
        embedded demo model.

        {{CliModel.OptionsHelp}}
          --layers   also print the module tree: every tensor with its shape, dtype and parameter count
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("info", args, ["--model", "--revision"], ["--layers"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string dir = CliModel.Directory(cl);
        using var model = LoadedModel.Load(dir);
        var c = model.Config;
        var o = Console.Out;
        o.WriteLine($"model      {dir}");
        o.WriteLine($"type       {c.ModelType}" + (c.Vision is { } tower ? $" (text {c.Text.ModelType}, vision {tower.ModelType.Replace("_vision_model", "")})" : ""));
        if (model.VisionLanguage is { } vlm)
        {
            var v = vlm.Vision;
            o.WriteLine($"vision     {v.ImageSize}x{v.ImageSize} px, patch {v.PatchSize} -> {vlm.ImageTokensPerImage} image tokens; hidden {v.HiddenSize}, {v.NumHiddenLayers} layers, {v.NumAttentionHeads} heads, mlp {v.IntermediateSize}");
            if (vlm is IVideoLanguageModel video)
                o.WriteLine($"video      {video.FramesPerVideo} frames x {video.VideoTokensPerFrame} tokens (class token kept) = {video.FramesPerVideo * video.VideoTokensPerFrame} video tokens; image_tower and video_tower share the vision config, each frame encoded independently (no temporal attention)");
        }
        if (c.Molmo is { } m)
            o.WriteLine($"molmo      crops of {c.Vision!.ImageSize} px (a global view + up to max_crops tiles), vit_layers [{string.Join(", ", m.VitLayers)}] concatenated, "
                + $"{m.PoolingH}x{m.PoolingW} attention pooling, SwiGLU projector; image features added to <im_patch> (id {c.ImageTokenIndex}); {m.AdditionalVocabSize} new_embedding rows");
        if (c.Llava is { } l)
            o.WriteLine($"projector  linear_1, {l.ProjectorHiddenAct}, linear_2{(l.MultimodalProjectorBias ? ", with biases" : "")}; on vision hidden state {l.VisionFeatureLayer} (strategy {l.VisionFeatureSelectStrategy})");
        if (c.Gemma3 is { } g && c.Vision is { } gv)
        {
            int side = (int)Math.Round(Math.Sqrt(g.MmTokensPerImage)), kernel = gv.GridSize / side;
            o.WriteLine($"projector  avg pool {kernel}x{kernel} ({gv.GridSize}x{gv.GridSize} patches -> {side}x{side}), mm_soft_emb_norm, x @ mm_input_projection_weight; "
                + $"image tokens: boi {g.BoiTokenIndex}, {g.MmTokensPerImage} x {c.ImageTokenIndex}, eoi {g.EoiTokenIndex}");
        }
        var t = c.Text;
        o.WriteLine($"text       hidden {t.HiddenSize}, {t.NumHiddenLayers} layers, {t.NumAttentionHeads} heads / {t.NumKeyValueHeads} kv heads x {t.HeadDim}, mlp {t.IntermediateSize}, vocab {t.VocabSize}, context {t.MaxPositionEmbeddings}"
            + (t.IsGemma2 ? $", softcaps {t.AttnLogitSoftcapping}/{t.FinalLogitSoftcapping}, sliding window {t.SlidingWindow}, query_pre_attn_scalar {t.QueryPreAttnScalar}" : "")
            + (t.IsGemma3 ? string.Create(CultureInfo.InvariantCulture, $", sliding window {t.SlidingWindow} on {Enumerable.Range(0, t.NumHiddenLayers).Count(t.IsSlidingLayer)} of {t.NumHiddenLayers} layers (RoPE base {t.RopeLocalBaseFreq}), "
                + $"global layers RoPE base {t.RopeTheta} / {t.RopeScalingFactor}, query_pre_attn_scalar {t.QueryPreAttnScalar}, QK-norm") : ""));

        var tensors = model.Checkpoint.Tensors.ToList();
        // A quantized matrix's parameters are its logical [rows, columns]; its packed words, scales and biases are bytes only.
        var quantized = model.Modules.Linears().Select(l => l.Weight).Append(model.Modules.LanguageModel.EmbedTokens)
            .OfType<QuantizedTensor>().DistinctBy(q => q.Name).ToList();
        var logical = quantized.ToDictionary(q => q.Name, q => (long)q.Rows * q.Columns);
        foreach (var q in quantized) { logical[QuantizedTensor.CompanionName(q.Name, "scales")] = 0; logical[QuantizedTensor.CompanionName(q.Name, "biases")] = 0; }
        long Parameters(StoredTensor x) => logical.TryGetValue(x.Name, out long n) ? n : x.ElementCount;
        o.WriteLine($"dtypes     {string.Join(", ", tensors.GroupBy(x => x.DType).Select(g => $"{g.Key.Name()} ({g.Count()} tensors)"))}");
        if (quantized.Count > 0)
            o.WriteLine($"quantized  {string.Join(", ", quantized.GroupBy(q => (q.Bits, q.GroupSize)).Select(g => $"{g.Count()} matrices at {g.Key.Bits} bits, groups of {g.Key.GroupSize}"))} (MLX affine)");
        o.WriteLine($"{"part",-18} {"parameters",15} {"bytes",15}");
        foreach (var part in tensors.GroupBy(x => Part(x.Name)).OrderBy(g => g.Key))
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{part.Key,-18} {part.Sum(Parameters),15:N0} {part.Sum(x => x.ByteLength),15:N0}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"total",-18} {tensors.Sum(Parameters),15:N0} {tensors.Sum(x => x.ByteLength),15:N0}"));

        if (cl.Flag("--layers"))
        {
            o.WriteLine();
            string? module = null;
            foreach (var x in tensors.OrderBy(x => x.Name, LayerAwareComparer.Instance))
            {
                int dot = x.Name.LastIndexOf('.');
                string parent = dot < 0 ? "" : x.Name[..dot];
                if (parent != module) { o.WriteLine(parent); module = parent; }
                o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {x.Name[(dot + 1)..],-12} {x.ShapeString,-20} {x.DType.Name(),-5} {x.ElementCount,13:N0}"));
            }
        }
        return 0;
    }

    static string Part(string name) =>
        name.Contains("vision_tower") || name.Contains("vision_backbone.image_vit") ? "vision_tower" :
        name.Contains("image_tower") ? "image_tower" :
        name.Contains("video_tower") ? "video_tower" :
        name.Contains("multi_modal_projector") || name.Contains("vision_backbone") ? "projector" :
        name.Contains("lm_head") || name == "model.transformer.ff_out.weight" ? "lm_head" : "language_model";

    /// <summary>Orders <c>layers.10</c> after <c>layers.9</c>, so the tree reads in forward order.</summary>
    sealed class LayerAwareComparer : IComparer<string>
    {
        public static readonly LayerAwareComparer Instance = new();
        public int Compare(string? a, string? b)
        {
            var pa = a!.Split('.');
            var pb = b!.Split('.');
            for (int i = 0; i < Math.Min(pa.Length, pb.Length); i++)
            {
                if (pa[i] == pb[i]) continue;
                bool na = int.TryParse(pa[i], out int ia), nb = int.TryParse(pb[i], out int ib);
                return na && nb ? ia.CompareTo(ib) : string.CompareOrdinal(pa[i], pb[i]);
            }
            return pa.Length.CompareTo(pb.Length);
        }
    }
}
