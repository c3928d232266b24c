// The Kinto Admin console as kinto-ops serves it at <server>/v1/admin/ (bundled by build.mjs at
// `npm run build`). The page always lives below the server it administers, so the server URL is
// the page's own address (right behind any proxy that serves both, hence single-server mode);
// the server writes its `multiauth.policies` into index.html, so the login form opens on the
// server's own authentication method rather than "Anonymous" (server.js, evaluated first).
import {singleServer} from './server.js'
import React from 'react'
import ReactDOM from 'react-dom'
import KintoAdmin from 'kinto-admin'

ReactDOM.render(React.createElement(KintoAdmin, {settings: {singleServer}}), document.getElementById('root'))
