// The browser and device dimensions of an event, which Sessions repeats per
// session: defined once so that the two cubes cannot drift apart. Cube wants
// each sql as a function, which its transpiler makes of literals written in
// a cube() call but not of ones imported from here.
const column = (name, title) => ({ sql: () => name, type: `string`, title });

export const clientDimensions = {
  agentName: column(`agent_name`, `Browser`),
  agentVersion: column(`agent_version`, `Browser Version`),
  osFamily: column(`os_family`, `OS Family`),
  osName: column(`os_name`, `OS`),
  osVersion: column(`os_version`, `OS Version`),
  osVersionMajor: column(`os_version_major`, `OS Major Version`),
  browserLanguage: column(`br_lang`, `Browser Language`),
  documentLanguage: column(`doc_lang`, `Document Language`),
  viewportSize: column(`viewport_size`, `Viewport Size`),
};
