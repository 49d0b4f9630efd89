// Dependency direction (docs/architecture.md): arrows point down only. Checked on the compiled
// JavaScript in dist/src, so type-only imports (erased by tsc) are allowed, as STYLE.md permits.
const layer = (name) => `^dist/src/${name}/`;
module.exports = {
  forbidden: [
    { name: 'common-is-a-leaf', severity: 'error', from: { path: layer('common') }, to: { path: '^dist/src/', pathNot: layer('common') } },
    { name: 'repo-uses-only-common', severity: 'error', from: { path: layer('repo') }, to: { path: '^dist/src/', pathNot: [layer('repo'), layer('common')] } },
    { name: 'bootloader-uses-only-common', severity: 'error', from: { path: layer('bootloader') }, to: { path: '^dist/src/', pathNot: [layer('bootloader'), layer('common')] } },
    { name: 'rpm-compose-uses-repo-and-common', severity: 'error', from: { path: layer('rpm-compose') }, to: { path: '^dist/src/', pathNot: [layer('rpm-compose'), layer('repo'), layer('common')] } },
    { name: 'deploy-uses-repo-bootloader-common', severity: 'error', from: { path: layer('deploy') }, to: { path: '^dist/src/', pathNot: [layer('deploy'), layer('repo'), layer('bootloader'), layer('common')] } },
    { name: 'firstboot-uses-deploy-and-common', severity: 'error', from: { path: layer('firstboot') }, to: { path: '^dist/src/', pathNot: [layer('firstboot'), layer('deploy'), layer('common')] } },
    { name: 'fleet-uses-deploy-repo-common', severity: 'error', from: { path: layer('fleet') }, to: { path: '^dist/src/', pathNot: [layer('fleet'), layer('deploy'), layer('repo'), layer('common')] } },
    { name: 'image-uses-firstboot-deploy-repo-bootloader-common', severity: 'error', from: { path: layer('image') }, to: { path: '^dist/src/', pathNot: [layer('image'), layer('firstboot'), layer('deploy'), layer('repo'), layer('bootloader'), layer('common')] } },
    { name: 'layering-uses-deploy-rpm-compose-repo-common', severity: 'error', from: { path: layer('layering') }, to: { path: '^dist/src/', pathNot: [layer('layering'), layer('deploy'), layer('rpm-compose'), layer('repo'), layer('common')] } },
    { name: 'nothing-below-imports-image', severity: 'error', from: { path: '^dist/src/(common|repo|bootloader|rpm-compose|deploy|firstboot|fleet|layering)/' }, to: { path: layer('image') } },
    { name: 'nothing-imports-cli', severity: 'error', from: { pathNot: layer('cli') }, to: { path: layer('cli') } },
    { name: 'cli-uses-module-entry-points', severity: 'error', from: { path: layer('cli') }, to: { path: '^dist/src/(repo|deploy|rpm-compose|bootloader|firstboot|fleet|image|layering)/', pathNot: '^dist/src/(repo|deploy|rpm-compose|bootloader|firstboot|fleet|image|layering)/index\\.js$' } },
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.js$' },
    moduleSystems: ['es6', 'cjs'],
  },
};
