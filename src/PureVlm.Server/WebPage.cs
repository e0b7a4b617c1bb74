using Microsoft.AspNetCore.Http;

namespace PureVlm.Server;

/// <summary>The page at <c>/</c>: one static HTML file with its CSS and script inline, embedded in this assembly (works offline).</summary>
static class WebPage
{
    static readonly byte[] Html = Load();

    static byte[] Load()
    {
        using var stream = typeof(WebPage).Assembly.GetManifestResourceStream("PureVlm.Server.index.html")
            ?? throw new InvalidOperationException("the embedded page PureVlm.Server.index.html is missing from the assembly");
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    public static Task Write(HttpResponse response)
    {
        response.ContentType = "text/html; charset=utf-8";
        return response.Body.WriteAsync(Html).AsTask();
    }
}
