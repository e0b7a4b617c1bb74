using PuppeteerSharp;
using PureVlm.Tests.Demo;
using Xunit;

namespace PureVlm.Tests.Server;

/// <summary>
/// The page at / driven in headless Chromium as a person would use it: upload a sample image, ask, watch the answer stream
/// in, see the box, click a token for its heatmap. Uses the system Chromium (PUREVLM_CHROMIUM, else chromium on the PATH);
/// skipped where there is none (.ci/run installs it).
/// </summary>
public class BrowserTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    static string? Chromium() =>
        Environment.GetEnvironmentVariable("PUREVLM_CHROMIUM") is { Length: > 0 } path ? path
        : (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .SelectMany(dir => new[] { "chromium", "chromium-browser" }.Select(name => Path.Combine(dir, name)))
            .FirstOrDefault(File.Exists);

    [SkippableFact(Timeout = 120_000)]
    public async Task The_page_streams_a_detect_answer_draws_its_box_and_shows_a_token_heatmap()
    {
        string? chromium = Chromium();
        Skip.If(chromium == null, "no Chromium: set PUREVLM_CHROMIUM or put chromium on the PATH");
        var s = DemoModelTests.Samples.First(x => x.Image == "04-red-circle.png" && x.Prompt == "detect circle");

        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = chromium,
            Headless = true,
            // Root in a container has no user namespace for Chromium's sandbox; the page is our own, on loopback.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            Timeout = 60_000,
        });
        await using var page = await browser.NewPageAsync();
        page.DefaultTimeout = 60_000;
        await page.GoToAsync(fixture.Server.Url + "/");

        var input = await page.QuerySelectorAsync("[data-testid=image-input]");
        await input.UploadFileAsync(ServerFixture.SamplePath(s.Image));
        await page.WaitForFunctionAsync("() => document.getElementById('picture').naturalWidth > 0");
        await page.EvaluateFunctionAsync("p => { document.querySelector('[data-testid=prompt]').value = p; }", s.Prompt);
        await page.ClickAsync("[data-testid=submit]");

        // The streamed answer, then the explained one: same text, one span per token, box drawn.
        await page.WaitForFunctionAsync("() => document.getElementById('overlay').dataset.boxes !== undefined");
        string answer = await page.EvaluateFunctionAsync<string>("() => [...document.querySelectorAll('[data-testid=token]')].map(t => t.firstChild.textContent).join('')");
        Assert.Equal(s.Expected, answer);
        Assert.Equal(s.ExpectedIds.Length - 1, await page.EvaluateFunctionAsync<int>("() => document.querySelectorAll('[data-testid=token]').length"));
        Assert.Equal("1", await page.EvaluateFunctionAsync<string>("() => document.querySelector('[data-testid=overlay]').dataset.boxes"));
        // Pixels of the drawn box are on the canvas (its colour, #ff1f8f).
        Assert.True(await page.EvaluateFunctionAsync<bool>("""
            () => { const c = document.querySelector('[data-testid=overlay]'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                    for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] < 80 && d[i + 3] > 0) return true; return false; }
            """));

        await page.ClickAsync("[data-testid=token]");
        await page.WaitForFunctionAsync("() => (document.querySelector('[data-testid=heatmap]').getAttribute('src') || '').startsWith('data:image/png;base64,')");
        Assert.True(await page.EvaluateFunctionAsync<int>("() => document.getElementById('lens').rows.length") > 1);
    }
}
